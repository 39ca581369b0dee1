"""Safe loading of fairseq checkpoints on torch >= 2.6.

torch.load now defaults to ``weights_only=True``, which refuses the few non-tensor objects that
fairseq checkpoints hold (``argparse.Namespace`` in RoBERTa / XLM-R releases, omegaconf
containers in fairseq 0.10-era checkpoints, numpy scalars in training state). Rather than
trusting every pickle (``weights_only=False`` or ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``, which
lets a crafted checkpoint run code), we allow-list exactly those types and keep torch's safe
unpickler. A checkpoint that needs anything else is refused with an error naming the file.
"""

import argparse
import collections
import errno
import functools
import logging
import os
import pickle
import shutil
import typing
import zipfile

import numpy as np
import torch

from fairseq_weam.core.errors import WeamError

logger = logging.getLogger(__name__)


class CheckpointError(WeamError, RuntimeError):
    """A checkpoint that cannot be loaded: unsafe, truncated or corrupted. Names the file."""


def _safe_types() -> list:
    # Plain builtin types appear as GLOBALs in omegaconf metadata (object_type, key_type, ...).
    types = [argparse.Namespace, typing.Any, dict, list, tuple, set, int, float, str, bool]
    types += [collections.defaultdict, collections.OrderedDict, np.dtype, np.ndarray]
    try:  # numpy >= 2
        from numpy._core.multiarray import _reconstruct, scalar

        # Checkpoints written under numpy 1 name these numpy.core.*; accept both spellings.
        types += [scalar, _reconstruct]
        types += [(scalar, "numpy.core.multiarray.scalar"), (_reconstruct, "numpy.core.multiarray._reconstruct")]
    except ImportError:  # numpy 1
        from numpy.core.multiarray import _reconstruct, scalar

        types += [scalar, _reconstruct]
    types += [type(np.dtype(t)) for t in ("float64", "float32", "int64", "int32", "bool")]
    try:
        import omegaconf
        from omegaconf import nodes
        from omegaconf.base import ContainerMetadata, Metadata

        types += [omegaconf.DictConfig, omegaconf.ListConfig, ContainerMetadata, Metadata]
        types += [
            getattr(nodes, n)
            for n in ("AnyNode", "StringNode", "IntegerNode", "FloatNode", "BooleanNode", "EnumNode", "ValueNode")
            if hasattr(nodes, n)
        ]
    except ImportError:  # pragma: no cover - omegaconf comes with fairseq
        pass
    try:
        from fairseq.dataclass.constants import StrEnum

        # fairseq's ChoiceEnum values, e.g. ddp_backend in old checkpoints' cfg.
        types += [StrEnum]
    except ImportError:  # pragma: no cover
        pass
    return types


def allow_fairseq_checkpoint_types() -> None:
    torch.serialization.add_safe_globals(_safe_types())


def _check_archive(path) -> None:
    """Verify the CRC-32 of every record of a zip-format torch checkpoint.

    torch.load does not: flipped bytes in a tensor record load silently as wrong weights, and in
    the pickle record they fail deep inside the unpickler. Reading the file once costs about a
    second per GB. Legacy (non-zip) files and remote paths are left to torch.load.
    """
    if not isinstance(path, (str, os.PathLike)) or not os.path.isfile(path) or not zipfile.is_zipfile(path):
        return
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: truncated or corrupted checkpoint ({e})") from None
    if bad is not None:
        raise CheckpointError(f"{path}: corrupted checkpoint: record {bad} fails its CRC-32 check")


def _torch_reason(e: Exception) -> str:
    lines = [l.strip() for l in str(e).splitlines() if l.strip()]
    detail = [l for l in lines if "WeightsUnpickler error" in l or "Unsupported" in l]
    return (detail or lines or [repr(e)])[-1]


def _guarded(load_checkpoint_to_cpu):
    @functools.wraps(load_checkpoint_to_cpu)
    def load(path, *args, **kwargs):
        _check_archive(path)
        try:
            return load_checkpoint_to_cpu(path, *args, **kwargs)
        except pickle.UnpicklingError as e:
            if "global" not in str(e).lower():
                # Not a refused type: the bytes are not a checkpoint (e.g. a text or HTML file).
                raise CheckpointError(
                    f"{path}: truncated or corrupted checkpoint, or not a checkpoint at all "
                    f"(torch said: {_torch_reason(e)})"
                ) from None
            raise CheckpointError(
                f"{path}: refused to load: the checkpoint's pickle needs a type outside the allow-list of "
                f"fairseq checkpoint types, so it could run arbitrary code. Only load checkpoints you trust. "
                f"(torch said: {_torch_reason(e)})"
            ) from None
        except (EOFError, zipfile.BadZipFile) as e:
            raise CheckpointError(f"{path}: truncated or corrupted checkpoint ({e})") from None
        except OSError as e:
            # torch's zip reader seeks before the file's start when the central directory it
            # looks for at the end of a file cut to a few KB is gone: "[Errno 22] Invalid argument".
            if e.errno == errno.EINVAL:
                raise CheckpointError(f"{path}: truncated or corrupted checkpoint ({e})") from None
            raise
        except RuntimeError as e:
            if "zip archive" in str(e) or "PytorchStreamReader" in str(e) or "unexpected EOF" in str(e):
                raise CheckpointError(f"{path}: truncated or corrupted checkpoint ({e})") from None
            raise

    load._weam_guarded = True
    return load


def _atomic_local_copy(copy):
    """fairseq saves the first checkpoint of a save atomically (FILE.tmp + rename) but then copies
    it to checkpoint_last.pt / checkpoint_best.pt in place; make those copies atomic too."""

    @functools.wraps(copy)
    def atomic_copy(src_path, dst_path, overwrite=False):
        from fairseq.file_io import PathManager

        if PathManager.path_requires_pathmanager(dst_path):  # remote storage: iopath's business
            return copy(src_path, dst_path, overwrite=overwrite)
        if not overwrite and os.path.exists(dst_path):
            return False
        tmp = f"{dst_path}.tmp"
        shutil.copyfile(src_path, tmp)
        os.replace(tmp, dst_path)
        return True

    atomic_copy._weam_atomic = True
    return atomic_copy


def install() -> None:
    """Allow-list fairseq's checkpoint types and make load errors name the file. Idempotent."""
    allow_fairseq_checkpoint_types()
    from fairseq import checkpoint_utils

    if not getattr(checkpoint_utils.load_checkpoint_to_cpu, "_weam_guarded", False):
        checkpoint_utils.load_checkpoint_to_cpu = _guarded(checkpoint_utils.load_checkpoint_to_cpu)
    from fairseq.file_io import PathManager

    if not getattr(PathManager.copy, "_weam_atomic", False):
        PathManager.copy = staticmethod(_atomic_local_copy(PathManager.copy))
