"""Console scripts: thin wrappers over the package's modules, all through :func:`run_cli`.

Every script is ``main(argv=None) -> exit status``: ``return run_cli(PROG, run, argv)`` where
``run(argv)`` parses its arguments and does the work. An expected error (a
:class:`~fairseq_weam.core.errors.WeamError`, or an OS error about a path the user named: missing,
a directory, not a directory, not permitted, already there) prints one ``PROG: error: MESSAGE`` line
and exits 2, as argparse does for usage errors. Anything else -- a ValueError, KeyError, a torch
RuntimeError ... -- is a bug or a crash and keeps its traceback (exit 1): user mistakes are raised
as WeamError subclasses (core/errors.py and the domains' own), never as plain ValueErrors.
"""

import sys
from typing import Callable, Optional, Sequence

from fairseq_weam.core.errors import WeamError

# Besides WeamError: what the standard library raises on a user's bad path.
EXPECTED_ERRORS = (
    WeamError,
    FileNotFoundError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
    FileExistsError,
)


def run_cli(prog: str, run: Callable[[Sequence[str]], object], argv: Optional[Sequence[str]] = None) -> int:
    """``run(argv)`` (default: ``sys.argv[1:]``); 0 when it returns None, its status when it returns an
    int, 2 with one ``PROG: error:`` line on stderr for an expected error."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        status = run(argv)
    except EXPECTED_ERRORS as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    return status if isinstance(status, int) and not isinstance(status, bool) else 0
