"""Reading the user's text files as UTF-8, with a file that is not UTF-8 reported as an expected
error naming it (a :class:`~fairseq_weam.core.errors.WeamDataError`, so one ``PROG: error:`` line)
rather than a bare ``UnicodeDecodeError``, which the console scripts treat as a bug."""

from contextlib import contextmanager
from typing import Iterator, List, Optional, TextIO

from fairseq_weam.core.errors import WeamDataError


def read_lines(path: str) -> List[str]:
    """The lines of a UTF-8 text file (``str.splitlines``); a decoding error names the file, the
    line and the byte."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise WeamDataError(f"{path}:{line}: not UTF-8 ({e.reason} at byte {e.start})") from None


@contextmanager
def open_text(path: str, newline: Optional[str] = None) -> Iterator[TextIO]:
    """``open(path, encoding="utf-8")`` for reading one file as a stream; a decoding error inside
    the ``with`` block names the file."""
    with open(path, encoding="utf-8", newline=newline) as f:
        try:
            yield f
        except UnicodeDecodeError as e:
            raise WeamDataError(f"{path}: not UTF-8 ({e.reason})") from None
