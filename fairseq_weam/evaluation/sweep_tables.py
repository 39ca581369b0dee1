"""The imbalance sweep's report as text: the markdown tables and the generated summary
(results.md), and the same numbers as json (results.json)."""

from typing import Optional, Sequence

from fairseq_weam.evaluation import stats
from fairseq_weam.evaluation.sweep_bli import bli_table
from fairseq_weam.evaluation.sweep_study import DIRECTION_NAMES, Study, languages_by_share


def _cells(rows):
    return "\n".join("| " + " | ".join(map(str, r)) + " |" for r in rows) + "\n"


def _lang_header(study: Study, lang: str) -> str:
    """``fr (24%)``; a language left out of the averages is marked ``†`` with its size."""
    share = study.shares[lang]
    text = f"{lang} ({100 * share:.2g}%)" if lang in study.shares and share > 0 else f"{lang} (no train)"
    return text + ("" if lang in study.covered else f" n={study.n[lang]} †")


def coverage_note(study: Study) -> str:
    fair = stats.FairAverage(
        None, None, study.covered, [l for l in study.langs if l not in study.covered], study.min_heldout
    )
    return f"avg: language-macro average; {fair.describe()}" + (" (marked †)" if fair.excluded else "") + "."


def accuracy_table(study: Study, metric: Optional[str] = None, direction: str = "mean") -> str:
    """One row per cell, one column per language (most data first), plus the macro average."""
    header = ["setting", "alpha", "seeds"] + [_lang_header(study, l) for l in study.langs] + ["avg"]
    rows = [header, ["---"] * len(header)]
    for cell in study.cells:
        row = [cell.setting, f"{cell.alpha:g}", len(cell.seeds)]
        row += [study.estimate(study.lang_stat(l), cell, direction, metric).text() for l in study.langs]
        row.append(study.estimate(study.macro_stat(), cell, direction, metric).text())
        rows.append(row)
    return _cells(rows)


def base_change_table(study: Study, metric: Optional[str] = None, direction: str = "mean") -> str:
    """One row per cell compared with the base, one column per language plus the average: the
    cell's accuracy minus the base's, in points, paired by seed."""
    header = ["setting", "alpha", "seeds"] + [_lang_header(study, l) for l in study.langs] + ["avg"]
    rows = [header, ["---"] * len(header)]
    for cell in study.base_changes():
        row = [cell.setting, f"{cell.alpha:g}", len(cell.seeds)]
        measures = [study.lang_stat(l) for l in study.langs] + [study.macro_stat()]
        row += [study.estimate(st, cell, direction, metric, baseline=study.base).text(signed=True) for st in measures]
        rows.append(row)
    return _cells(rows)


def data_table(results: Sequence[dict]) -> str:
    """Per language: training pairs, natural share p, and sampled share q at each alpha."""
    langs = languages_by_share(results)
    alphas = sorted({r["alpha"] for r in results}, reverse=True)
    by_alpha = {r["alpha"]: r for r in results}
    header = ["lang", "train pairs", "share p"] + [f"q (alpha={a:g})" for a in alphas]
    rows = [header, ["---"] * len(header)]
    for lang in langs:
        d = results[0]["data"].get(lang)
        if d is None:
            rows.append([lang, 0, "-"] + ["-"] * len(alphas))
            continue
        rows.append(
            [lang, d["train_pairs"], f"{100 * d['share']:.2f}%"]
            + [f"{100 * by_alpha[a]['data'][lang]['sampled_share']:.2f}%" for a in alphas]
        )
    return _cells(rows)


def summary(study: Study, direction: str = "mean") -> str:
    """The generated opening of results.md: per cell the average, the slope against log share
    and the change of the bottom / top third against alpha = 1; then which objectives differ
    beyond the noise."""
    seeds = sorted({s for c in study.cells for s in c.seeds})
    left_out = [f"{l} (n={study.n[l]})" for l in study.langs if l not in study.covered]
    lines = [
        "## Summary\n",
        f"{len(study.results)} runs: {len({c.setting for c in study.cells})} settings x "
        f"{len({c.alpha for c in study.cells})} alphas x seeds {', '.join(map(str, seeds))}. Top-1 retrieval "
        f"accuracy (%), {study.metric} scoring, {DIRECTION_NAMES[direction]}; {study.uncertainty_note()}.",
        f"Averages, slopes and thirds use the {len(study.covered)} languages with at least {study.min_heldout} "
        f"held-out pairs ({', '.join(study.covered) or 'none'})"
        + (f"; left out: {', '.join(left_out)}" if left_out else "")
        + ". "
        f"Slope: least-squares change in accuracy (points) per tenfold training share. "
        f"Bottom third by share: {', '.join(study.bottom) or '-'}; top third: {', '.join(study.top) or '-'}; "
        f"their change is the mean accuracy change against the same setting at alpha = 1 (paired by seed)."
        + (
            " Δ vs base: the average minus the base's (the row `base`, the masked-LM model every continued run "
            "starts from), paired by seed.\n"
            if study.base
            else "\n"
        ),
    ]
    header = ["setting", "alpha", "seeds", "avg", "slope / 10x share", "Δ bottom third vs α=1", "Δ top third vs α=1"]
    header += ["Δ avg vs base"] if study.base else []
    rows = [header, ["---"] * len(header)]
    for cell in study.cells:
        s = study.cell_summary(cell, direction)
        rows.append(
            [
                cell.setting,
                f"{cell.alpha:g}",
                len(cell.seeds),
                s["avg_macro"].text(),
                s["slope"].text(signed=True),
                s["bottom_change"].text(signed=True),
                s["top_change"].text(signed=True),
            ]
            + ([s["base_change"].text(signed=True)] if study.base else [])
        )
    lines.append(_cells(rows))
    diffs = study.objective_differences(direction)
    if diffs:
        lines.append(
            "Differences between objectives in the average (points), beyond the noise when |a - b| > "
            "sd_a + sd_b (several seeds) or when the paired 95 % bootstrap interval of a - b excludes 0 "
            "(one seed); `>` beyond the noise, `~` within it, `?` not decided (mixed seed counts or no "
            "per-pair hits):\n"
        )
        for alpha in dict.fromkeys(d["alpha"] for d in diffs):
            items = []
            for d in sorted((d for d in diffs if d["alpha"] == alpha), key=lambda d: -abs(d["diff"])):
                a, b, diff = (d["a"], d["b"], d["diff"]) if d["diff"] >= 0 else (d["b"], d["a"], -d["diff"])
                sign = {True: ">", False: "~", None: "?"}[d["exceeds"]]
                items.append(f"{a} {sign} {b} ({100 * diff:+.1f})")
            lines.append(f"* α={alpha:g}: " + ", ".join(items))
        lines.append("")
    return "\n".join(lines)


def markdown_report(study: Study) -> str:
    first = study.results[0]
    metric = study.metric
    parts = [
        "# Imbalance sweep: sentence retrieval per language\n",
        summary(study),
        "## Accuracy per language\n",
        f"Top-1 retrieval accuracy (%) on the held-out pairs, {metric} scoring, mean of both directions "
        f"(en->xx and xx->en); column headers give each language's share of the training pairs; "
        f"{study.uncertainty_note()}. Held-out pairs per language: "
        f"{', '.join(f'{l} {k}' for l, k in study.n.items())}. "
        f"Layer {first['eval'].get('layer_index', first['eval']['layer'])}, {first['eval']['pooling']} pooling.\n",
        accuracy_table(study, metric, "mean"),
        coverage_note(study) + "\n",
    ]
    if study.base:
        parts += [
            "## Change against the base\n",
            f"Accuracy minus the base's (points, {metric} scoring, mean of both directions), per language, paired "
            "by seed: what continuing from the base added, and for which languages. `mlm` continued for the same "
            "updates is the control for 'just more updates'; `scratch-*` rows trained from random weights for the "
            f"base's plus the continued updates. {study.uncertainty_note()}.\n",
            base_change_table(study, metric, "mean"),
        ]
    parts += [
        "## Per direction\n",
        f"### en -> xx ({metric})\n\n" + accuracy_table(study, metric, "src2tgt"),
        f"### xx -> en ({metric})\n\n" + accuracy_table(study, metric, "tgt2src"),
    ]
    for m in ("cosine", "margin"):
        if m != metric and m in next(iter(first["retrieval"].values())):
            parts.append(f"## {m} scoring (mean of both directions)\n\n" + accuracy_table(study, m, "mean"))
    if any("bli" in r for r in study.results):
        parts.append("## Word translation (BLI)\n\n" + bli_table(study.results))
    parts.append("## Training data and sampling\n\n" + data_table(study.results))
    return "\n".join(parts)


def json_report(study: Study) -> dict:
    """results.json: the settings of the statistics, per cell every estimate, and the runs."""
    cells = []
    for cell in study.cells:
        s = study.cell_summary(cell)
        cells.append(
            {
                "setting": cell.setting,
                "alpha": cell.alpha,
                "seeds": cell.seeds,
                "accuracy": {l: study.estimate(study.lang_stat(l), cell).as_json() for l in study.langs},
                "average": {
                    "macro": s["avg_macro"].as_json(),
                    "pair_weighted": s["avg_pair_weighted"].as_json(),
                    "covers": study.covered,
                    "left_out": [l for l in study.langs if l not in study.covered],
                },
                "slope_per_decade": s["slope"].as_json(),
                "bottom_third_change": s["bottom_change"].as_json(),
                "top_third_change": s["top_change"].as_json(),
                "change_vs_base": {
                    "per_language": {l: study.base_change(study.lang_stat(l), cell).as_json() for l in study.langs},
                    "macro": s["base_change"].as_json(),
                }
                if study.base and cell is not study.base
                else None,
            }
        )
    diffs = [{**d, "a_avg": d["a_avg"].as_json(), "b_avg": d["b_avg"].as_json()} for d in study.objective_differences()]
    return {
        "metric": study.metric,
        "direction": "mean",
        "min_heldout": study.min_heldout,
        "bootstrap": {"resamples": study.n_boot, "seed": study.boot_seed, "level": stats.LEVEL},
        "languages": {l: {"heldout_pairs": study.n[l], "share": study.shares[l]} for l in study.langs},
        "bottom_third": study.bottom,
        "top_third": study.top,
        "cells": cells,
        "objective_differences": diffs,
        "runs": study.results,
    }
