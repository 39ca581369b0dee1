"""The command line's side of the validation layer (:mod:`fairseq_weam.core.checks`): an
``ArgumentParser`` whose usage errors are one line, and ``type=`` functions for every kind of flag,
so a bad value is refused while the arguments are parsed, before any work:

    p = ArgumentParser(prog="fairseq-weam-retrieval")
    p.add_argument("--k", type=positive_int)                  # --k 0 / -3: refused
    p.add_argument("--threshold", type=finite_float)          # nan / inf: refused
    p.add_argument("--src", type=text_file)                   # missing, unreadable or not UTF-8
    p.add_argument("--json", type=output_file)                # under a regular file: refused

Every message names the flag (argparse adds ``argument --k:``) and, for files, ``FILE:LINE``.
"""

import argparse
import functools
import glob
import os

from fairseq_weam.core import checks
from fairseq_weam.core.errors import WeamError


class UsageError(WeamError, ValueError):
    """A command line argparse refuses (unknown flag, missing value, a value out of range)."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is a :class:`UsageError` (one ``PROG: error:`` line and exit
    status 2 through :func:`fairseq_weam.cli.run_cli`) instead of the usage text and SystemExit."""

    def error(self, message):
        raise UsageError(message)


def _argtype(name, check):
    """An argparse ``type=`` function from a check that raises a WeamError; the flag's name is
    added by argparse (``argument --k: ...``), so the message here starts with the value's fault."""

    def parse(text):
        try:
            return check(text)
        except WeamError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    parse.__name__ = name
    return parse


def _number(text, **bounds):
    try:
        return checks.check_number("", text, **bounds)
    except checks.FlagError as e:
        raise checks.FlagError(str(e).lstrip()) from None


def int_range(minimum=None, maximum=None):
    """``type=`` for an integer in ``[minimum, maximum]``."""
    return _argtype("int", functools.partial(_number, minimum=minimum, maximum=maximum, integer=True))


def float_range(minimum=None, maximum=None, min_open=False, max_open=False):
    """``type=`` for a finite float in the interval (``min_open``: ``minimum`` itself excluded)."""
    bounds = dict(minimum=minimum, maximum=maximum, min_open=min_open, max_open=max_open)
    return _argtype("float", lambda text: float(_number(text, **bounds)))


positive_int = int_range(1)  # sizes, counts, k
non_negative_int = int_range(0)  # counts where 0 means "none" / "all"
finite_float = float_range()  # thresholds
non_negative_float = float_range(0)  # weights, lambda, alphas
positive_float = float_range(0, min_open=True)  # learning rates, temperatures
probability = float_range(0, 1)  # fractions in [0, 1]


def number_list(minimum=None, maximum=None, min_open=False):
    """``type=`` for comma-separated numbers, each checked; returns the text as given (the
    command splits it itself)."""
    one = float_range(minimum, maximum, min_open)

    def parse(text):
        if not [one(v) for v in text.split(",") if v.strip()]:
            raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}")
        return text

    parse.__name__ = "list"
    return parse


def _keep(check):
    """A path check that returns the path as the user wrote it."""

    def run(text):
        check(text)
        return text

    return run


text_file = _argtype("file", _keep(checks.check_input_file))  # exists, readable, UTF-8


def _text_file_or_dir(path, suffix=".tsv"):
    """A text file, or a directory whose ``*SUFFIX`` files are all text (XTREME's copies)."""
    if os.path.isdir(path):
        checks.check_input_dir(path)
        checks.check_text_files(sorted(glob.glob(os.path.join(path, "*" + suffix))))
    else:
        checks.check_input_file(path)
    return path


text_file_or_dir = _argtype("path", _text_file_or_dir)
binary_file = _argtype("file", _keep(functools.partial(checks.check_input_file, text=False)))
input_dir = _argtype("directory", _keep(checks.check_input_dir))
output_file = _argtype("path", _keep(checks.check_output_path))
output_dir = _argtype("path", _keep(functools.partial(checks.check_output_path, directory=True)))


def layer_spec(text, allow_all=False):
    """``--layer``: middle, last, an integer (negative counts from the last), or (align-eval) a
    comma-separated list or ``all``; whether it is in range is known once the model is loaded."""
    if allow_all and text == "all":
        return text
    items = text.split(",") if allow_all else [text]
    for item in items:
        if item in ("middle", "last"):
            continue
        try:
            int(item)
        except ValueError:
            lists = ", 'all' or a comma-separated list of them" if allow_all else ""
            raise argparse.ArgumentTypeError(f"expected middle, last or an integer{lists}, got {text!r}") from None
    return text
