"""The preparation summary: printed at the end and written as ``summary.json`` (which
:class:`~fairseq_weam.core.data_dir.PreparedData` reads back)."""

import json
import os
from collections import Counter
from typing import Dict

from fairseq_weam.core.data_dir import SUMMARY


def pair_entry(lines_read: Dict[str, int], kept: Dict[str, int], dropped: Counter, **extra) -> dict:
    return {"lines_read": lines_read, "kept": kept, "dropped": dict(sorted(dropped.items())), **extra}


def format_summary(summary: dict) -> str:
    rows = [
        f"{'pair':<10} {'read':>8} {'train':>8} {'valid':>6} {'dropped':>7} {'links':>9} {'coverage src/tgt':>17}  "
        "reasons"
    ]
    for pair, e in summary["pairs"].items():
        reasons = ", ".join(f"{k}: {v}" for k, v in e["dropped"].items())
        cov = e["coverage"]
        rows.append(
            f"{pair:<10} {sum(e['lines_read'].values()):>8} {e['kept']['train']:>8} {e['kept']['valid']:>6} "
            f"{sum(e['dropped'].values()):>7} {e['links']:>9} {cov['src']:>8.1%}/{cov['tgt']:<8.1%}  {reasons}"
        )
    rows.append("subword tokens per language (train + valid, without eos):")
    rows.append("  " + ", ".join(f"{lang}: {n}" for lang, n in summary["tokens_per_language"].items()))
    t = summary["timings_s"]
    rows.append("time (s): " + ", ".join(f"{k} {v:.1f}" for k, v in t.items()))
    rows.append(f"dictionary: {summary['dictionary']['size']} types; output: {summary['output']}")
    return "\n".join(rows)


def write_summary(out_dir: str, summary: dict) -> None:
    with open(os.path.join(out_dir, SUMMARY), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2, ensure_ascii=False)
