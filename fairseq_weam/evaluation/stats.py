"""Statistics of the imbalance study, pure numpy: seed spread, bootstrap intervals over
held-out pairs, fair averages over languages, the trend of accuracy against log data share,
and the bottom / top third of languages by share.

Rules (the docs repeat them):

* **Seeds**: mean and sample standard deviation (ddof = 1) over seeds; one seed has no sd.
* **Bootstrap over held-out pairs** (for single-seed cells): the held-out pairs of each
  language are resampled with replacement, each language on its own (stratified), ``n_boot``
  times; a statistic of the per-language accuracies is computed on every replicate and the
  interval is the 2.5th-97.5th percentile (numpy's default linear interpolation). Replicate
  draws for the language at position ``j`` come from ``np.random.default_rng([seed, j])``, so
  two runs evaluated on the same pairs are resampled identically (a paired bootstrap), and
  the result does not depend on what else is bootstrapped. Every statistic used here (averages,
  trend slope, third means) is linear in the per-language accuracies, so the difference of two
  runs is bootstrapped by passing per-pair differences.
* **Fair averages**: languages with fewer than ``min_heldout`` held-out pairs are reported but
  left out; the language-macro average weighs every covered language equally, the
  pair-weighted one every covered held-out pair (the accuracy over all their pairs pooled).
* **Trend**: least squares of accuracy against log10(share): the slope is the change in
  accuracy per tenfold more data.
* **Thirds**: ``k = max(1, round(L / 3))`` languages with the least and with the most data.
"""

from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from fairseq_weam.core.errors import WeamDataError

BOOTSTRAP_SEED = 20211
N_BOOTSTRAP = 1000
LEVEL = 0.95
MIN_HELDOUT = 100


def mean_sd(values: Sequence[float]) -> Tuple[float, float]:
    """Mean and sample standard deviation (ddof 1); the sd of a single value is nan."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        raise ValueError("mean_sd of no values")
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else float("nan")


def percentile_interval(samples: np.ndarray, level: float = LEVEL) -> Tuple[float, float]:
    """The central ``level`` interval of bootstrap replicates (percentile method)."""
    tail = (1 - level) / 2
    lo, hi = np.quantile(np.asarray(samples, dtype=np.float64), [tail, 1 - tail])
    return float(lo), float(hi)


def bootstrap_means(vectors: Sequence[np.ndarray], n_boot: int = N_BOOTSTRAP, seed: int = BOOTSTRAP_SEED) -> np.ndarray:
    """``(n_boot, L)``: column j holds the means of ``n_boot`` resamples (with replacement,
    same size) of ``vectors[j]``, the per-pair scores of language j."""
    out = np.empty((n_boot, len(vectors)))
    for j, v in enumerate(vectors):
        v = np.asarray(v, dtype=np.float64)
        if v.size == 0:
            raise WeamDataError(f"language {j}: no held-out pairs to resample")
        idx = np.random.default_rng([seed, j]).integers(0, v.size, size=(n_boot, v.size))
        out[:, j] = v[idx].mean(1)
    return out


def bootstrap_interval(
    vectors: Sequence[np.ndarray],
    statistic: Optional[Callable[[np.ndarray], np.ndarray]] = None,
    n_boot: int = N_BOOTSTRAP,
    seed: int = BOOTSTRAP_SEED,
    level: float = LEVEL,
) -> Tuple[float, float]:
    """Interval of ``statistic`` (rows of per-language means -> one value per row; default:
    the single language's mean) over stratified resamples of the per-pair ``vectors``."""
    means = bootstrap_means(vectors, n_boot, seed)
    values = means[:, 0] if statistic is None else np.asarray(statistic(means))
    return percentile_interval(values, level)


@dataclass
class FairAverage:
    """Averages over the languages with at least ``min_heldout`` held-out pairs."""

    macro: Optional[float]
    pair_weighted: Optional[float]
    covered: List[str] = field(default_factory=list)
    excluded: List[str] = field(default_factory=list)
    min_heldout: int = MIN_HELDOUT

    def describe(self) -> str:
        """``covers fr, de (>= 100 held-out pairs); leaves out sw``, for a table's note."""
        text = f"covers {', '.join(self.covered) or 'no language'} (>= {self.min_heldout} held-out pairs)"
        return text + (f"; leaves out {', '.join(self.excluded)}" if self.excluded else "")


def covered_languages(n: dict, min_heldout: int = MIN_HELDOUT) -> List[str]:
    """Languages (in the given order) with at least ``min_heldout`` held-out pairs."""
    return [lang for lang, k in n.items() if k >= min_heldout]


def fair_average(values: dict, n: dict, min_heldout: int = MIN_HELDOUT) -> FairAverage:
    """Language-macro and pair-weighted averages of ``{lang: value}`` over the languages of
    ``{lang: held-out pairs}`` with at least ``min_heldout`` pairs; None when none qualifies."""
    covered = [l for l in covered_languages(n, min_heldout) if l in values]
    excluded = [l for l in values if l not in covered]
    if not covered:
        return FairAverage(None, None, [], excluded, min_heldout)
    v = np.array([values[l] for l in covered], dtype=np.float64)
    w = np.array([n[l] for l in covered], dtype=np.float64)
    return FairAverage(float(v.mean()), float((v * w).sum() / w.sum()), covered, excluded, min_heldout)


def log_share_trend(shares: Sequence[float], values) -> Tuple[np.ndarray, np.ndarray]:
    """Least-squares ``value = intercept + slope * log10(share)``; ``values`` may be (L,) or
    (R, L) (one fit per row, e.g. bootstrap replicates). Returns ``(slope, intercept)``."""
    x = np.log10(np.asarray(shares, dtype=np.float64))
    if x.size < 2 or np.ptp(x) == 0:
        raise WeamDataError("a trend needs at least two different shares")
    y = np.asarray(values, dtype=np.float64)
    xc = x - x.mean()
    slope = (y - y.mean(-1, keepdims=True)) @ xc / (xc @ xc)
    return slope, y.mean(-1) - slope * x.mean()


def thirds(shares: Sequence[float]) -> Tuple[List[int], List[int]]:
    """Positions of the ``k = max(1, round(L/3))`` languages with the smallest and with the
    largest share (ties broken by position)."""
    order = sorted(range(len(shares)), key=lambda i: (shares[i], i))
    k = max(1, int(round(len(shares) / 3)))
    return sorted(order[:k]), sorted(order[-k:])
