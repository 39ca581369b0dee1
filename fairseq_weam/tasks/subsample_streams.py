"""The task's side of ``--subsample``: check the fractions against the prepared data, wrap a
stream's training datasets in the kept subset (a ``SubsampleError`` is one line under
``fairseq-train``, as every WeamError: :func:`fairseq_weam.core.checks.one_line_errors`).

The subset itself is :func:`fairseq_weam.data.subsample.subsample_indices` (a pure function of
stream name, pair count and fraction). Only the training split is subsampled; valid and held-out
sets never change. ``--lang-caps`` applies after the subsample, to the kept pairs.
"""

import logging
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from fairseq.data import data_utils

from fairseq_weam.core.errors import WeamDataError
from fairseq_weam.data.language_sampling import IndexSubsetDataset
from fairseq_weam.data.subsample import FLAG, kept_count, subsample_indices

logger = logging.getLogger(__name__)


def stream_prefix(data_path: str, split: str, stream: str) -> str:
    """The binarized file (without .bin/.idx) whose length is the stream's example count."""
    if "-" in stream:
        src, tgt = stream.split("-", 1)
        return os.path.join(data_path, f"{split}.{src}-{tgt}.{src}")
    return os.path.join(data_path, f"{split}.{stream}-None.{stream}")


def stream_length(data_path: str, split: str, stream: str, dataset_impl: Optional[str] = None) -> int:
    prefix = stream_prefix(data_path, split, stream)
    ds = data_utils.load_indexed_dataset(prefix, None, dataset_impl)
    if ds is None:
        raise WeamDataError(f"missing data file: {prefix}.bin / {prefix}.idx")
    return len(ds)


def check_fractions(
    fractions: Dict[str, float], data_path: str, split: str, dataset_impl: Optional[str] = None
) -> Dict[str, Tuple[int, int]]:
    """``{stream: (kept, of)}`` in ``data_path``'s ``split``; a SubsampleError for a fraction that
    keeps no pair (raised before any model is built)."""
    out = {}
    for stream, fraction in fractions.items():
        n = stream_length(data_path, split, stream, dataset_impl)
        out[stream] = (len(subsample_indices(stream, n, fraction)), n)
    return out


def subsample_stream(
    stream: str, datasets: Sequence, sizes: np.ndarray, fraction: Optional[float]
) -> Tuple[List, np.ndarray]:
    """The stream's aligned datasets (None entries kept) and per-example sizes, cut to the kept
    pairs of ``fraction`` (unchanged for None or 1)."""
    if fraction is None or kept_count(len(sizes), fraction) == len(sizes):
        return list(datasets), sizes
    keep = subsample_indices(stream, len(sizes), fraction)
    logger.info(
        "%s: %s %g keeps %d of %d pairs (the same nested subset in every run)",
        stream,
        FLAG,
        fraction,
        len(keep),
        len(sizes),
    )
    return [None if ds is None else IndexSubsetDataset(ds, keep) for ds in datasets], np.asarray(sizes)[keep]


def kept_note(kept: Dict[str, Tuple[int, int]], fractions: Dict[str, float]) -> str:
    """Lines under the start-of-run share table: ``en-el: 960 of 9599 pairs (--subsample 0.1)``."""
    return "".join(f"\n{s}: {k} of {n} training pairs kept ({FLAG} {fractions[s]:g})" for s, (k, n) in kept.items())
