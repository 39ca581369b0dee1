"""Output directories that appear only when complete.

Everything is written into a hidden sibling ``.NAME.partial-XXXX`` and renamed to ``NAME`` at
the end, so an interrupted or failed run never leaves a directory that looks finished (a killed
process may leave the hidden partial directory behind; it is never read and can be deleted).
"""

import os
import shutil
import tempfile
from contextlib import contextmanager
from typing import Iterable

from fairseq_weam.core.errors import OutputDirError


def check_output_dir(path: str, overwrite: bool, inputs: Iterable[str] = ()) -> str:
    """Fail early, before any work, if ``path`` may not be (over)written. Returns its absolute path."""
    path = os.path.abspath(path)
    if os.path.lexists(path) and not overwrite:
        raise OutputDirError(f"{path} already exists; pass --overwrite to replace it")
    for inp in inputs:
        inp = os.path.abspath(inp)
        if inp == path or inp.startswith(path + os.sep):
            raise OutputDirError(f"input {inp} is inside the output directory {path}; choose another output directory")
    return path


@contextmanager
def atomic_output_dir(path: str, overwrite: bool = False, inputs: Iterable[str] = ()):
    """Yield a temporary directory that replaces ``path`` only if the block finishes."""
    path = check_output_dir(path, overwrite, inputs)
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.partial-", dir=parent)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    publish(tmp, path)


def publish(tmp: str, path: str) -> None:
    """Rename the finished directory ``tmp`` to ``path``, replacing an existing ``path``."""
    parent = os.path.dirname(path)
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; a finished output is an ordinary directory
    if os.path.lexists(path):
        # Move the old output aside first: a directory cannot be renamed onto a non-empty one.
        old = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.old-", dir=parent)
        os.replace(path, os.path.join(old, "previous"))
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, path)
