"""Word translation (BLI) in the imbalance sweep's report: one score per run, one table per cell."""

from typing import Optional, Sequence

import numpy as np

from fairseq_weam.evaluation.sweep_study import group_cells


def bli_score(result: dict, method: str = "csls", kind: str = "isolated", at: str = "p@1") -> Optional[float]:
    """One run's word-translation score: precision (%) over all its lexicons and both directions,
    each query counting once (so a 2-pair lexicon does not weigh like a 150-pair one); None when
    the run has no BLI result."""
    pairs = [
        (d["n"], d[method][at])
        for lex in result.get("bli", {}).values()
        for d in lex["vectors"].get(kind, {}).values()
        if d.get(method) and d[method].get(at) is not None and d.get("n")
    ]
    if not pairs:
        return None
    n, p = np.array(pairs, dtype=np.float64).T
    return float((n * p).sum() / n.sum())


def bli_table(results: Sequence[dict]) -> str:
    """Markdown table: per setting and alpha, CSLS P@1 / P@5 (isolated word vectors) over the
    lexicons' queries in both directions, mean ± sd over seeds."""
    rows = ["| setting | alpha | seeds | CSLS P@1 | CSLS P@5 |", "|---|---|---|---|---|"]
    for cell in group_cells([r for r in results if "bli" in r]):
        cols = []
        for at in ("p@1", "p@5"):
            v = [x for x in (bli_score(r, at=at) for r in cell.runs.values()) if x is not None]
            cols.append(f"{np.mean(v):.1f}" + (f" ± {np.std(v, ddof=1):.1f}" if len(v) > 1 else "") if v else "-")
        rows.append(f"| {cell.setting} | {cell.alpha:g} | {len(cell.runs)} | {cols[0]} | {cols[1]} |")
    return "\n".join(rows) + "\n"
