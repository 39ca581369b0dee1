"""Errors and the bad-line policy shared by the preparation steps."""

from collections import Counter
from typing import Optional

from fairseq_weam.core.errors import WeamError


class PrepareError(WeamError, ValueError):
    """Bad input or options; the message names the file (and line, link) at fault."""


class BadLines:
    """Stop at the first bad line (default) or count it and go on (``--skip-bad-lines``).

    ``reject`` raises PrepareError with ``path:line: reason`` unless skipping, in which case the
    reason is counted (per language pair) for the summary and the caller drops the line.
    """

    def __init__(self, skip: bool):
        self.skip = skip
        self.counts = {}

    def reject(self, pair: str, reason: str, path: str, lineno: Optional[int], detail: str = ""):
        if not self.skip:
            where = f"{path}:{lineno}" if lineno is not None else path
            hint = " (use --skip-bad-lines to drop such lines and count them in the summary)"
            raise PrepareError(f"{where}: {reason}{': ' + detail if detail else ''}{hint}")
        self.counts.setdefault(pair, Counter())[reason] += 1

    def dropped(self, pair: str) -> Counter:
        return self.counts.get(pair, Counter())
