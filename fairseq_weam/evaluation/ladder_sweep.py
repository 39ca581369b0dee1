"""The share ladder as a third axis of the sweep: ``fairseq-weam-sweep --ladder el:1,0.3,0.1,0.03``.

Every grid point (setting x alpha x seed) is also run with each rung below 1 of each laddered
language: the run keeps that fraction of the language's own training pairs (``--subsample``,
the nested subsets of :mod:`fairseq_weam.data.subsample`) while every other language keeps its
full data. Rung 1 is the grid point's ordinary run, shared by all ladders and never trained
twice. A rung run is named ``NAME_LANGFRACTION`` (``weam_a1_s1_el0.1``) and records its
``subsample`` in result.json, where the sweep also writes the kept pair counts and shares.
"""

from dataclasses import replace
from typing import Dict, List, Sequence, Tuple

from fairseq_weam.core.errors import WeamError
from fairseq_weam.data.subsample import FLAG, kept_count

Ladder = Tuple[str, List[float]]  # (language, rungs from 1 down)


class LadderError(WeamError, ValueError):
    """A malformed ``--ladder`` value; the message names the flag."""


def parse_ladder(spec: str) -> Ladder:
    """``"el:1,0.3,0.1"`` -> ``("el", [1.0, 0.3, 0.1])``: distinct fractions in (0, 1], sorted
    from 1 down; 1 (the shared full-data run) is added when missing."""
    lang, sep, values = spec.partition(":")
    lang = lang.strip()
    if not sep or not lang or "-" in lang:
        raise LadderError(f"--ladder {spec!r}: expected LANG:F1,F2,... (e.g. el:1,0.3,0.1,0.03)")
    try:
        rungs = [float(v) for v in values.split(",") if v.strip()]
    except ValueError:
        raise LadderError(f"--ladder {spec!r}: the rungs must be numbers") from None
    bad = [r for r in rungs if not 0 < r <= 1]
    if bad or not rungs:
        raise LadderError(f"--ladder {spec!r}: every rung must be in (0, 1], got {bad or 'none'}")
    if len(set(rungs)) != len(rungs):
        raise LadderError(f"--ladder {spec!r}: a rung is given twice")
    return lang, sorted(set(rungs) | {1.0}, reverse=True)


def parse_ladders(specs: Sequence[str]) -> List[Ladder]:
    ladders = [parse_ladder(s) for s in specs]
    langs = [lang for lang, _ in ladders]
    if len(set(langs)) != len(langs):
        raise LadderError(f"--ladder: a language is laddered twice: {langs}")
    return ladders


def rung_name(name: str, lang: str, fraction: float) -> str:
    return f"{name}_{lang}{fraction:g}"


def add_rungs(grid: Sequence, ladders: Sequence[Ladder]) -> List:
    """Each grid point followed by its rung runs (ladder by ladder, large rungs first); the
    grid's seed-by-seed order is kept, so an interrupted sweep has whole ladders of the first
    seeds. ``grid`` holds :class:`fairseq_weam.evaluation.sweep.RunSpec`."""
    out = []
    for spec in grid:
        out.append(spec)
        for lang, rungs in ladders:
            for f in rungs:
                if f < 1:
                    out.append(
                        replace(
                            spec,
                            name=rung_name(spec.name, lang, f),
                            args=list(spec.args) + [FLAG, f"{lang}:{f:g}"],
                            subsample={lang: f},
                        )
                    )
    return out


def subsampled_sizes(sizes: Dict[str, int], subsample: Dict[str, float]) -> Dict[str, int]:
    """Training pairs per language as a run with ``subsample`` sees them (the task's rounding)."""
    unknown = sorted(set(subsample) - set(sizes))
    if unknown:
        raise LadderError(f"--ladder: no training pairs for {unknown}; languages are {list(sizes)}")
    return type(sizes)((lang, kept_count(n, subsample.get(lang, 1.0))) for lang, n in sizes.items())
