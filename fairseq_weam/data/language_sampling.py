"""Control over the language mix: temperature sampling and per-language caps.

Temperature sampling as in XLM / XLM-R: with ``p_i`` the share of stream ``i`` in the data,
examples are drawn with probability ``q_i = p_i^alpha / sum_j p_j^alpha``; alpha 1 keeps the
natural proportions, 0.3 is XLM-R's choice, 0 is uniform over streams. Each stream is then
resampled to ``q_i * N`` examples per epoch (``N`` = all examples), the way fairseq's
``multilingual_masked_lm`` does with ``ResamplingDataset``.
"""

import re
from dataclasses import dataclass
from typing import Dict, Sequence

import numpy as np
from fairseq.data import BaseWrapperDataset

from fairseq_weam.core.errors import OptionError, WeamDataError


def temperature_probs(sizes: Sequence[float], alpha: float) -> np.ndarray:
    """``q_i ∝ p_i^alpha`` over streams with ``p_i = sizes_i / sum(sizes)``; empty streams get 0."""
    sizes = np.asarray(sizes, dtype=np.float64)
    if sizes.ndim != 1 or sizes.size == 0 or (sizes < 0).any() or sizes.sum() <= 0:
        raise WeamDataError(f"stream sizes must be non-negative with a positive total, got {sizes.tolist()}")
    if alpha < 0:
        raise OptionError(f"--sampling-alpha must be >= 0, got {alpha}")
    p = sizes / sizes.sum()
    q = np.where(p > 0, np.power(p, alpha, where=p > 0, out=np.zeros_like(p)), 0.0)
    return q / q.sum()


def resampling_ratios(sizes: Sequence[float], alpha: float) -> np.ndarray:
    """Per-stream ``size_ratio`` so that an epoch keeps the total size with shares ``q``."""
    sizes = np.asarray(sizes, dtype=np.float64)
    q = temperature_probs(sizes, alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sizes > 0, q * sizes.sum() / sizes, 0.0)


@dataclass(frozen=True)
class Cap:
    amount: int
    unit: str  # "examples" or "tokens"


_CAP = re.compile(r"^(\d+)(tok)?$")


def parse_caps(spec: str) -> Dict[str, Cap]:
    """``"en-sw:200,en-fr:50000tok"`` -> {stream: Cap}; a ``tok`` suffix caps tokens, else examples."""
    caps = {}
    for item in filter(None, (x.strip() for x in (spec or "").split(","))):
        name, sep, value = item.rpartition(":")
        m = _CAP.match(value.strip())
        if not sep or not name or not m:
            raise OptionError(f"--lang-caps: {item!r} is not NAME:N or NAME:Ntok")
        caps[name.strip()] = Cap(int(m.group(1)), "tokens" if m.group(2) else "examples")
    return caps


def cap_indices(sizes: Sequence[int], cap: Cap, seed: int) -> np.ndarray:
    """A fixed random subset of examples within the cap, in their original order.

    The subset depends only on ``seed`` (not on the epoch), so a capped language stays the same
    small corpus for the whole run, as a genuinely low-resource language would.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    order = np.random.default_rng(seed).permutation(sizes.shape[0])
    if cap.unit == "examples":
        keep = order[: cap.amount]
    else:
        keep = order[np.cumsum(sizes[order]) <= cap.amount]
    return np.sort(keep)


def sampling_table(names, sizes, tokens, probs, epoch_sizes) -> str:
    """The table logged at the start of training: data share against sampling share."""
    sizes = np.asarray(sizes, dtype=np.float64)
    tokens = np.asarray(tokens, dtype=np.float64)
    width = max([len("stream")] + [len(n) for n in names])
    lines = [f"{'stream':<{width}}  {'examples':>9}  {'tokens':>10}  {'data %':>7}  {'sample %':>8}  {'per epoch':>9}"]
    for name, n, t, q, e in zip(names, sizes, tokens, probs, epoch_sizes):
        lines.append(
            f"{name:<{width}}  {int(n):>9d}  {int(t):>10d}  {100 * n / sizes.sum():>7.2f}  {100 * q:>8.2f}  "
            f"{int(e):>9d}"
        )
    return "\n".join(lines)


class IndexSubsetDataset(BaseWrapperDataset):
    """A fixed subset of a dataset (used for per-language caps)."""

    def __init__(self, dataset, indices: np.ndarray):
        super().__init__(dataset)
        self.indices = np.asarray(indices, dtype=np.int64)
        self._sizes = np.asarray(dataset.sizes)[self.indices]

    def __getitem__(self, index):
        return self.dataset[int(self.indices[index])]

    def __len__(self):
        return self.indices.shape[0]

    @property
    def sizes(self):
        return self._sizes

    def num_tokens(self, index):
        return self._sizes[index]

    def size(self, index):
        return self._sizes[index]

    @property
    def supports_prefetch(self):
        return False
