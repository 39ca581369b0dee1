"""The imbalance sweep's report files: OUT/results.md, OUT/results.json and the figure
OUT/retrieval_vs_share.{png,pdf}. The numbers come from :mod:`sweep_study`, the text from
:mod:`sweep_tables`, the figure from :mod:`sweep_figure`."""

import os
from typing import Sequence

from fairseq_weam.core.atomic import write_json_atomic
from fairseq_weam.evaluation import stats
from fairseq_weam.evaluation.ladder import write_ladder
from fairseq_weam.evaluation.sweep_figure import make_figure, save_figure
from fairseq_weam.evaluation.sweep_study import Study
from fairseq_weam.evaluation.sweep_tables import json_report, markdown_report


def write_report(
    results: Sequence[dict], out_dir: str, metric: str = "margin", min_heldout: int = stats.MIN_HELDOUT
) -> dict:
    """Write OUT/results.md, OUT/results.json and OUT/retrieval_vs_share.{png,pdf}; return the paths.
    ``--ladder`` rung runs go to the ladder section and OUT/ladder.{json,png,pdf} only."""
    study = Study([r for r in results if not r.get("subsample")], metric, min_heldout)
    paths = {"markdown": os.path.join(out_dir, "results.md"), "json": os.path.join(out_dir, "results.json")}
    tmp = f"{paths['markdown']}.tmp{os.getpid()}"
    ladder_md, ladder_paths = write_ladder(results, out_dir, metric, min_heldout)
    paths.update(ladder_paths)
    with open(tmp, "w") as f:
        f.write(markdown_report(study) + ("\n" + ladder_md if ladder_md else ""))
    os.replace(tmp, paths["markdown"])
    write_json_atomic(paths["json"], json_report(study))
    fig = make_figure(study)
    paths["figure"], paths["figure_pdf"] = save_figure(fig, os.path.join(out_dir, "retrieval_vs_share"))
    import matplotlib.pyplot as plt

    plt.close(fig)
    return paths
