"""Checks of a user's input, run before any work: numbers in their range, input files that exist,
can be read and are UTF-8 text, output paths that can be created.

Every failure is a :class:`~fairseq_weam.core.errors.WeamError` whose one-line message names the
flag (``--k``) or the file (``FILE:LINE`` for text that is not UTF-8, with what it looks like
instead: latin-1 / cp1252, UTF-16, binary), so a console script prints one line and exits 2 and
``fairseq-train`` shows it as its last line. The command line's own type functions are in
:mod:`fairseq_weam.cli.checks`; the ``weam`` task and criterion call these directly.
"""

import codecs
import math
import os
import sys
from typing import Iterable, Optional

from fairseq_weam.core.errors import WeamError

# Bytes read at once when checking that a file is UTF-8 (memory stays bounded on large corpora).
CHUNK = 1 << 20


class FlagError(WeamError, ValueError):
    """A flag's value out of its range (or not a number); the message names the flag."""


class InputFileError(WeamError, ValueError):
    """An input file or directory that is missing, unreadable or not UTF-8 text; the message names it."""


class OutputPathError(WeamError, ValueError):
    """An output path that cannot be created (e.g. under a regular file); the message names it."""


def _named(flag: Optional[str], what: str) -> str:
    return f"{flag} {what}" if flag else what


# --- numbers -------------------------------------------------------------------------------------


def check_number(
    flag: str,
    value,
    *,
    minimum=None,
    maximum=None,
    min_open: bool = False,
    max_open: bool = False,
    integer: bool = False,
):
    """``value`` (a number or its text) if it is finite and inside the interval, else a
    :class:`FlagError` naming ``flag``: ``--mask-prob must be in [0, 1], got 1.5``."""
    if value is None:
        return None
    try:
        number = int(value) if integer else float(value)
    except (TypeError, ValueError):
        raise FlagError(f"{flag} must be {'an integer' if integer else 'a number'}, got {value!r}") from None
    if isinstance(value, bool) or (integer and isinstance(value, float) and value != int(value)):
        raise FlagError(f"{flag} must be an integer, got {value!r}")
    if not math.isfinite(number):
        raise FlagError(f"{flag} must be a finite number, got {value}")
    low_ok = minimum is None or (number > minimum if min_open else number >= minimum)
    high_ok = maximum is None or (number < maximum if max_open else number <= maximum)
    if not (low_ok and high_ok):
        raise FlagError(f"{flag} must be {describe_range(minimum, maximum, min_open, max_open, integer)}, got {value}")
    return number


def describe_range(minimum=None, maximum=None, min_open=False, max_open=False, integer=False) -> str:
    kind = "an integer" if integer else "a number"
    if minimum is not None and maximum is not None:
        return f"in {'(' if min_open else '['}{minimum:g}, {maximum:g}{')' if max_open else ']'}"
    if minimum is not None:
        return f"{kind} {'>' if min_open else '>='} {minimum:g}"
    if maximum is not None:
        return f"{kind} {'<' if max_open else '<='} {maximum:g}"
    return f"a finite {'integer' if integer else 'number'}"


def check_numbers(flag: str, values: Iterable, **bounds) -> list:
    """Each of a list of values (``--alphas 1,0.3``) checked as :func:`check_number` does."""
    return [check_number(flag, v, **bounds) for v in values]


# --- input files ---------------------------------------------------------------------------------


def check_input_dir(path: str, flag: Optional[str] = None) -> str:
    """``path`` if it is a readable directory."""
    if path is None:
        return path
    if not os.path.exists(path):
        raise InputFileError(_named(flag, f"{path}: no such directory"))
    if not os.path.isdir(path):
        raise InputFileError(_named(flag, f"{path}: not a directory"))
    if not os.access(path, os.R_OK | os.X_OK):
        raise InputFileError(_named(flag, f"{path}: permission denied"))
    return path


def check_input_file(path: str, flag: Optional[str] = None, text: bool = True) -> str:
    """``path`` if it is a readable regular file and, with ``text``, UTF-8 text throughout."""
    if path is None:
        return path
    if not os.path.exists(path):
        raise InputFileError(_named(flag, f"{path}: no such file"))
    if os.path.isdir(path):
        raise InputFileError(_named(flag, f"{path}: is a directory, expected a file"))
    try:
        with open(path, "rb"):
            pass
    except OSError as e:
        raise InputFileError(_named(flag, f"{path}: cannot be read ({e.strerror})")) from None
    if text:
        check_utf8(path, flag)
    return path


def check_utf8(path: str, flag: Optional[str] = None) -> None:
    """Fail on the first line of ``path`` that is not UTF-8, naming ``FILE:LINE`` and what the file
    looks like instead; a UTF-8 byte-order mark is fine, a UTF-16 one (or NUL bytes) is not. Read
    in chunks of whole lines (a newline never falls inside a UTF-8 character)."""
    line, carry, first = 1, b"", True
    with open(path, "rb") as f:
        while True:
            chunk = f.read(CHUNK)
            if first:
                if chunk.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                    raise InputFileError(
                        _named(flag, f"{path}:1: UTF-16 text (byte-order mark {chunk[:2].hex()}); save it as UTF-8")
                    )
                first = False
            nul = chunk.find(b"\x00")
            if nul >= 0:
                at = line + carry.count(b"\n") + chunk.count(b"\n", 0, nul)
                even, odd = chunk[0:4096:2].count(0), chunk[1:4096:2].count(0)
                half = max(min(len(chunk), 4096) // 2, 1)
                looks = "UTF-16 text" if max(even, odd) > 0.3 * half and min(even, odd) < 0.05 * half else "binary data"
                raise InputFileError(_named(flag, f"{path}:{at}: not UTF-8 text: NUL bytes ({looks}?)"))
            data = carry + chunk
            cut = len(data) if not chunk else data.rfind(b"\n") + 1  # whole lines; all of it at the end
            try:
                data[:cut].decode("utf-8")
            except UnicodeDecodeError as e:
                at = line + data.count(b"\n", 0, e.start)
                column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
                if e.end == cut and not chunk and e.reason == "unexpected end of data":
                    what = "the file ends inside a character"
                else:
                    what = "latin-1 / cp1252 text? convert it with iconv -f latin1 -t utf-8"
                raise InputFileError(
                    _named(flag, f"{path}:{at}: not UTF-8 (byte 0x{data[e.start]:02x} at column {column}; {what})")
                ) from None
            if not chunk:
                return
            line += data.count(b"\n", 0, cut)
            carry = data[cut:]


def check_sentencepiece_model(path: str, flag: Optional[str] = None) -> str:
    """``path`` if sentencepiece can load it (else its C++ error would be a traceback)."""
    check_input_file(path, flag, text=False)
    import sentencepiece as spm

    try:
        spm.SentencePieceProcessor(model_file=path)
    except (RuntimeError, OSError) as e:
        raise InputFileError(_named(flag, f"{path}: not a sentencepiece model ({str(e).splitlines()[0]})")) from None
    return path


def check_text_files(paths: Iterable[str], flag: Optional[str] = None) -> list:
    return [check_input_file(p, flag) for p in paths]


# --- outputs -------------------------------------------------------------------------------------


def check_output_path(path: str, flag: Optional[str] = None, directory: bool = False) -> str:
    """``path`` if it can be created (or replaced): its nearest existing ancestor is a writable
    directory, not a regular file; an existing ``path`` is of the right kind."""
    if path is None:
        return path
    path = os.path.abspath(path)
    if os.path.exists(path):
        if directory and not os.path.isdir(path):
            raise OutputPathError(_named(flag, f"{path}: exists and is not a directory"))
        if not directory and os.path.isdir(path):
            raise OutputPathError(_named(flag, f"{path}: is a directory, expected a file name"))
    parent = os.path.dirname(path)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise OutputPathError(_named(flag, f"{path}: cannot be created, {parent} is a file, not a directory"))
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputPathError(_named(flag, f"{path}: cannot be created, {parent} is not writable"))
    return path


# --- uncaught errors -----------------------------------------------------------------------------

_PREVIOUS_HOOK = None


# fairseq's own console scripts, which do not go through fairseq_weam.cli.run_cli.
FAIRSEQ_PROGRAMS = ("fairseq-train", "fairseq-hydra-train")


def one_line_errors(prog: Optional[str] = None) -> None:
    """Show an uncaught WeamError as one ``PROG: error: MESSAGE`` line (exit status 2) instead of a
    traceback; any other exception keeps its traceback. Only inside fairseq's own programs
    (``fairseq-train --task weam``; ``prog`` None: when the running program is one of
    :data:`FAIRSEQ_PROGRAMS`); anywhere else (our console scripts, tests, notebooks) nothing changes."""
    global _PREVIOUS_HOOK
    running = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if prog is None:
        prog = running if running in FAIRSEQ_PROGRAMS else None
    if prog is None or _PREVIOUS_HOOK is not None:
        return
    _PREVIOUS_HOOK = sys.excepthook

    def hook(exc_type, exc, tb):
        if not issubclass(exc_type, WeamError):
            return _PREVIOUS_HOOK(exc_type, exc, tb)
        sys.stdout.flush()
        sys.stderr.write(f"{prog}: error: {exc}\n")
        sys.stderr.flush()
        os._exit(2)  # the status of a usage error; nothing was trained, nothing is left to flush

    sys.excepthook = hook
