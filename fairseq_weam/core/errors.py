"""The base of every *expected* error of the package: bad input, a missing or mismatched file.

A console script turns a ``WeamError`` into one ``PROG: error: MESSAGE`` line and exit status 2
(see :func:`fairseq_weam.cli.run_cli`); anything else is a bug or a crash and keeps its traceback.
Subclasses keep ``ValueError`` / ``OSError`` as a second base where callers catch those.
"""


class WeamError(Exception):
    """An expected error with a message meant for the user (one line, naming the file)."""


class WeamDataError(WeamError, ValueError):
    """Missing or inconsistent WEAM data files; the message names the file."""


class OutputDirError(WeamError, ValueError):
    """An output directory that may not be (over)written; the message names it and the fix."""


class OptionError(WeamError, ValueError):
    """A bad value of a flag or config field, or flags that do not go together; the message names
    the flag (``--mask-prob``, ``--lang-caps`` ...)."""
