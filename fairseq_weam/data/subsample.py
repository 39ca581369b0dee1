"""Deterministic, nested subsets of a training stream: the rungs of a share ladder.

``--subsample el:0.1`` keeps 10 % of the ``en-el`` training pairs. The kept pairs are a pure
function of (stream name, number of pairs, fraction), never of the training seed or objective:

* the stream's pair indices ``0 .. n-1`` are permuted once by
  ``numpy.random.default_rng(stream_seed(name))``, the seed being the first 8 bytes of the
  SHA-256 of the stream name (``en-el``), so the order is the same in every run, process and
  Python version;
* a fraction ``f`` keeps the first ``kept_count(n, f) = floor(f * n + 0.5)`` indices of that
  permutation (round half up), returned in their original order.

Because every fraction takes a prefix of the same permutation, the subsets are nested: the 1 %
sample lies inside the 3 % sample, inside the 10 % one ... The statistics of a ladder compare
rungs, so the nesting keeps the pairs of a small rung inside every larger rung.

Names (``parse_subsample`` / ``resolve_subsample``): ``LANG:F`` names every pair stream with
``LANG`` on one side (``el`` -> ``en-el``) and the monolingual stream ``LANG``; ``SRC-TGT:F``
names exactly that stream. A language on a side of every pair (the pivot, ``en``) is refused:
it would shrink everything; name the pairs instead.
"""

import hashlib
import math
import re
from typing import Dict, List, Sequence, Tuple

import numpy as np

from fairseq_weam.core.errors import WeamError

FLAG = "--subsample"


class SubsampleError(WeamError, ValueError):
    """A ``--subsample`` value that cannot be applied; the message names the flag."""


_ITEM = re.compile(r"^([A-Za-z0-9_]+(?:-[A-Za-z0-9_]+)?):([^:]+)$")


def parse_subsample(spec: str) -> List[Tuple[str, float]]:
    """``"el:0.1,de:0.3"`` -> ``[("el", 0.1), ("de", 0.3)]``; fractions in (0, 1]."""
    items = []
    for item in filter(None, (x.strip() for x in (spec or "").split(","))):
        m = _ITEM.match(item)
        if not m:
            raise SubsampleError(f"{FLAG}: {item!r} is not LANG:FRACTION or SRC-TGT:FRACTION (e.g. el:0.1)")
        try:
            fraction = float(m.group(2))
        except ValueError:
            raise SubsampleError(f"{FLAG}: {item!r}: the fraction {m.group(2)!r} is not a number") from None
        if not (0.0 < fraction <= 1.0) or math.isnan(fraction):
            raise SubsampleError(f"{FLAG}: {item!r}: the fraction must be in (0, 1], got {fraction:g}")
        items.append((m.group(1), fraction))
    names = [name for name, _ in items]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise SubsampleError(f"{FLAG}: {', '.join(twice)} given twice")
    return items


def pivot_languages(stream_names: Sequence[str]) -> List[str]:
    """Languages on a side of every pair stream, when there are two or more pairs (``en``)."""
    pairs = [s.split("-") for s in stream_names if "-" in s]
    if len(pairs) < 2:
        return []
    return [lang for lang in pairs[0] if all(lang in p for p in pairs)]


def matching_streams(key: str, stream_names: Sequence[str]) -> List[str]:
    """The streams a ``--subsample`` key names (see the module doc); none for the pivot."""
    if "-" in key:
        return [key] if key in stream_names else []
    if key in pivot_languages(stream_names):
        return []
    return [s for s in stream_names if s == key or ("-" in s and key in s.split("-"))]


def resolve_subsample(spec: str, stream_names: Sequence[str]) -> Dict[str, float]:
    """``{stream: fraction}`` for the streams ``spec`` names; an error for a name that matches no
    stream, a stream named twice, or the pivot language."""
    out: Dict[str, float] = {}
    named_by: Dict[str, str] = {}
    for key, fraction in parse_subsample(spec):
        streams = matching_streams(key, stream_names)
        if not streams:
            pairs = [s for s in stream_names if "-" in s]
            why = (
                f"{key} is on a side of every pair; name pairs instead, e.g. {pairs[0]}:{fraction:g}"
                if key in pivot_languages(stream_names)
                else f"no training stream for {key!r}"
            )
            raise SubsampleError(f"{FLAG}: {why}; streams are {', '.join(stream_names)}")
        for stream in streams:
            if stream in out:
                raise SubsampleError(f"{FLAG}: stream {stream} is named twice (by {named_by[stream]} and {key})")
            out[stream], named_by[stream] = fraction, key
    return out


def kept_count(n: int, fraction: float) -> int:
    """Pairs kept of ``n`` at ``fraction``: ``floor(fraction * n + 0.5)`` (round half up)."""
    return int(math.floor(fraction * n + 0.5))


def stream_seed(name: str) -> int:
    """A stable 64-bit seed from the stream name (SHA-256, not Python's salted ``hash``)."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "little")


def subsample_indices(name: str, n: int, fraction: float) -> np.ndarray:
    """The kept pair indices of stream ``name`` (``n`` pairs) at ``fraction``, sorted; nested
    across fractions. Raises :class:`SubsampleError` when no pair would be kept."""
    if not (0.0 < fraction <= 1.0):
        raise SubsampleError(f"{FLAG}: {name}: the fraction must be in (0, 1], got {fraction:g}")
    k = kept_count(n, fraction)
    if k == 0:
        raise SubsampleError(
            f"{FLAG}: {name}:{fraction:g} keeps no pair of {n} (round({fraction:g} x {n}) = 0); "
            f"the smallest fraction that keeps one is {0.5 / n:.3g}"
            if n
            else f"{FLAG}: {name} has no training pair"
        )
    if k == n:
        return np.arange(n, dtype=np.int64)
    order = np.random.default_rng(stream_seed(name)).permutation(n)
    return np.sort(order[:k])
