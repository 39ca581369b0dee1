"""Tables, summary and figure of the imbalance sweep: retrieval accuracy per language against
the language's share of the training data, over objectives, sampling alphas and seeds.

A *cell* is one (setting, alpha) grid point; its runs are its seeds. Every number of a cell
is an :class:`Estimate`: the mean and standard deviation over seeds when the cell has several
seeds, else the single run's value with a 95 % bootstrap interval over the held-out pairs
(``stats`` has the rules). Averages, trends and thirds cover only the languages with at least
``min_heldout`` held-out pairs; the others are reported, marked, and drawn hollow.
"""

import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from fairseq_weam.evaluation import stats
from fairseq_weam.evaluation.retrieval import pair_scores

DIRECTIONS = ("mean", "src2tgt", "tgt2src")
DIRECTION_NAMES = {"mean": "mean of both directions", "src2tgt": "en->xx", "tgt2src": "xx->en"}


def accuracy(result: dict, lang: str, metric: str = "margin", direction: str = "mean") -> float:
    return result["retrieval"][lang][metric][direction]


def languages_by_share(results: Sequence[dict]) -> List[str]:
    """Held-out languages, most training data first (languages without training data last)."""
    data = results[0]["data"]
    langs = list(results[0]["retrieval"])
    return sorted(langs, key=lambda l: -data.get(l, {}).get("share", 0.0))


@dataclass
class Estimate:
    """A value with its uncertainty: ``sd`` over seeds (2+ seeds) or a bootstrap ``ci`` over
    held-out pairs (1 seed; None when the runs kept no per-pair hits)."""

    value: Optional[float]
    sd: Optional[float] = None
    ci: Optional[Tuple[float, float]] = None
    seeds: int = 1

    def interval(self) -> Optional[Tuple[float, float]]:
        if self.value is None:
            return None
        if self.sd is not None:
            return self.value - self.sd, self.value + self.sd
        return self.ci

    def text(self, scale: float = 100.0, digits: int = 1, signed: bool = False) -> str:
        if self.value is None:
            return "-"
        num = (lambda x: f"{x:+.{digits}f}") if signed else (lambda x: f"{x:.{digits}f}")
        out = num(scale * self.value)
        if self.sd is not None:
            return out + f" ± {scale * self.sd:.{digits}f}"
        if self.ci is not None:
            return out + f" [{num(scale * self.ci[0])}, {num(scale * self.ci[1])}]"
        return out

    def as_json(self) -> dict:
        return {"value": self.value, "sd": self.sd, "ci": list(self.ci) if self.ci else None, "seeds": self.seeds}


@dataclass
class Cell:
    setting: str
    alpha: float
    runs: "OrderedDict[int, dict]"  # seed -> run result

    @property
    def seeds(self) -> List[int]:
        return list(self.runs)

    @property
    def label(self) -> str:
        return f"{self.setting}, α={self.alpha:g}"


def group_cells(results: Sequence[dict]) -> List[Cell]:
    """(setting, alpha) cells, settings in order of first appearance and alphas from natural
    proportions (1) down, each with its runs by seed."""
    cells: "OrderedDict[tuple, Cell]" = OrderedDict()
    for r in results:
        cell = cells.setdefault((r["setting"], r["alpha"]), Cell(r["setting"], r["alpha"], OrderedDict()))
        seed = r.get("seed", 1)
        if seed in cell.runs:
            raise ValueError(f"{r['name']}: two runs of {cell.label} with seed {seed}")
        cell.runs[seed] = r
    for cell in cells.values():
        cell.runs = OrderedDict(sorted(cell.runs.items()))
    settings = list(dict.fromkeys(c.setting for c in cells.values()))
    return sorted(cells.values(), key=lambda c: (settings.index(c.setting), -c.alpha))


Statistic = Callable[[np.ndarray], np.ndarray]  # (R, L) per-language accuracies -> (R,)


class Study:
    """The sweep's runs with the languages, shares and statistics the report needs."""

    def __init__(
        self,
        results: Sequence[dict],
        metric: str = "margin",
        min_heldout: int = stats.MIN_HELDOUT,
        n_boot: int = stats.N_BOOTSTRAP,
        boot_seed: int = stats.BOOTSTRAP_SEED,
    ):
        if not results:
            raise ValueError("no sweep results to report")
        self.results, self.metric, self.min_heldout = list(results), metric, min_heldout
        self.n_boot, self.boot_seed = n_boot, boot_seed
        self.langs = languages_by_share(results)
        first = results[0]
        self.n = {l: first["retrieval"][l]["n"] for l in self.langs}
        self.shares = {l: first["data"].get(l, {}).get("share", 0.0) for l in self.langs}
        self.covered = stats.covered_languages(self.n, min_heldout)
        # Trend and thirds need a share on the log axis.
        self.fitted = [l for l in self.covered if self.shares[l] > 0]
        self.bottom, self.top = ([], [])
        if self.fitted:
            lo, hi = stats.thirds([self.shares[l] for l in self.fitted])
            self.bottom, self.top = [self.fitted[i] for i in lo], [self.fitted[i] for i in hi]
        self.cells = group_cells(results)
        self._boot: Dict[tuple, Optional[np.ndarray]] = {}

    # -- statistics of the per-language accuracies -------------------------------------------
    def columns(self, langs: Sequence[str]) -> List[int]:
        return [self.langs.index(l) for l in langs]

    def lang_stat(self, lang: str) -> Statistic:
        j = self.langs.index(lang)
        return lambda m: m[:, j]

    def macro_stat(self) -> Optional[Statistic]:
        idx = self.columns(self.covered)
        return (lambda m: m[:, idx].mean(1)) if idx else None

    def weighted_stat(self) -> Optional[Statistic]:
        idx = self.columns(self.covered)
        w = np.array([self.n[l] for l in self.covered], dtype=np.float64)
        return (lambda m: m[:, idx] @ w / w.sum()) if idx else None

    def slope_stat(self) -> Optional[Statistic]:
        if len({self.shares[l] for l in self.fitted}) < 2:
            return None
        idx, shares = self.columns(self.fitted), [self.shares[l] for l in self.fitted]
        return lambda m: stats.log_share_trend(shares, m[:, idx])[0]

    def group_stat(self, langs: Sequence[str]) -> Optional[Statistic]:
        idx = self.columns(langs)
        return (lambda m: m[:, idx].mean(1)) if idx else None

    # -- estimates --------------------------------------------------------------------------
    def rows(self, cell: Cell, seeds: Sequence[int], direction: str, metric: str) -> np.ndarray:
        return np.array([[accuracy(cell.runs[s], l, metric, direction) for l in self.langs] for s in seeds])

    def boot(self, run: dict, direction: str, metric: str) -> Optional[np.ndarray]:
        """Bootstrap means ``(n_boot, L)`` of one run; the same resampled pairs for every run."""
        key = (run["name"], direction, metric)
        if key not in self._boot:
            vectors = [pair_scores(run["retrieval"][l], metric, direction) for l in self.langs]
            self._boot[key] = (
                None if any(v is None for v in vectors) else stats.bootstrap_means(vectors, self.n_boot, self.boot_seed)
            )
        return self._boot[key]

    def estimate(
        self,
        stat: Optional[Statistic],
        cell: Cell,
        direction: str = "mean",
        metric: Optional[str] = None,
        baseline: Optional[Cell] = None,
    ) -> Estimate:
        """``stat`` of the cell, or of the cell minus ``baseline`` paired by seed (and, for one
        seed, by resampled pair)."""
        metric = metric or self.metric
        seeds = cell.seeds if baseline is None else [s for s in cell.seeds if s in baseline.runs]
        if stat is None or not seeds:
            return Estimate(None)
        rows = self.rows(cell, seeds, direction, metric)
        if baseline is not None:
            rows = rows - self.rows(baseline, seeds, direction, metric)
        values = np.asarray(stat(rows), dtype=np.float64)
        if len(seeds) > 1:
            mean, sd = stats.mean_sd(values)
            return Estimate(mean, sd=sd, seeds=len(seeds))
        boot = self.boot(cell.runs[seeds[0]], direction, metric)
        if boot is not None and baseline is not None:
            base = self.boot(baseline.runs[seeds[0]], direction, metric)
            boot = None if base is None else boot - base
        ci = stats.percentile_interval(stat(boot)) if boot is not None else None
        return Estimate(float(values[0]), ci=ci, seeds=1)

    def baseline(self, cell: Cell) -> Optional[Cell]:
        """The same setting at alpha = 1 (natural proportions), if the grid has it."""
        if cell.alpha == 1:
            return None
        return next((c for c in self.cells if c.setting == cell.setting and c.alpha == 1), None)

    def objective_differences(self, direction: str = "mean") -> List[dict]:
        """Every pair of settings at the same alpha: difference of the macro averages, and
        whether it exceeds the noise: with 2+ seeds each, |diff| > sd_a + sd_b (the +-1 sd
        bands do not overlap); with one seed each, the paired bootstrap interval excludes 0."""
        stat, out = self.macro_stat(), []
        if stat is None:
            return out
        for i, a in enumerate(self.cells):
            for b in self.cells[i + 1 :]:
                if a.alpha != b.alpha:
                    continue
                ea, eb = self.estimate(stat, a, direction), self.estimate(stat, b, direction)
                diff = ea.value - eb.value
                if ea.seeds > 1 and eb.seeds > 1:
                    rule, exceeds = "seed spread", abs(diff) > ea.sd + eb.sd
                elif ea.seeds == 1 and eb.seeds == 1:
                    d = self.estimate(stat, a, direction, baseline=b)
                    rule = "bootstrap"
                    exceeds = None if d.ci is None else bool(d.ci[0] > 0 or d.ci[1] < 0)
                else:
                    rule, exceeds = "mixed seeds", None
                out.append(
                    {
                        "alpha": a.alpha,
                        "a": a.setting,
                        "b": b.setting,
                        "a_avg": ea,
                        "b_avg": eb,
                        "diff": diff,
                        "rule": rule,
                        "exceeds": exceeds,
                    }
                )
        return out

    def cell_summary(self, cell: Cell, direction: str = "mean") -> dict:
        base = self.baseline(cell)
        return {
            "avg_macro": self.estimate(self.macro_stat(), cell, direction),
            "avg_pair_weighted": self.estimate(self.weighted_stat(), cell, direction),
            "slope": self.estimate(self.slope_stat(), cell, direction),
            "bottom_change": self.estimate(self.group_stat(self.bottom), cell, direction, baseline=base)
            if base
            else Estimate(None),
            "top_change": self.estimate(self.group_stat(self.top), cell, direction, baseline=base)
            if base
            else Estimate(None),
        }

    def uncertainty_note(self) -> str:
        seeds = sorted({len(c.seeds) for c in self.cells})
        parts = []
        if any(s > 1 for s in seeds):
            parts.append("cells of several seeds show mean ± standard deviation over seeds")
        if 1 in seeds:
            parts.append(
                f"single-seed cells show the value [95 % bootstrap interval over held-out pairs, "
                f"{self.n_boot} resamples, bootstrap seed {self.boot_seed}]"
            )
        return "; ".join(parts)


# -- markdown --------------------------------------------------------------------------------


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
        f"their change is the mean accuracy change against the same setting at alpha = 1 (paired by seed).\n",
    ]
    header = ["setting", "alpha", "seeds", "avg", "slope / 10x share", "Δ bottom third vs α=1", "Δ top third vs α=1"]
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


# -- figure ----------------------------------------------------------------------------------

MARKERS = ("o", "s", "^", "D", "v", "P")
LINESTYLES = ("-", "--", ":", "-.")
LABEL_GID = "language-label"


def _percent_axis(ax, plt):
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda x, _: f"{100 * x:.3g}%"))
    ax.grid(True, which="both", alpha=0.3)
    ax.set_xlabel("language's share of the training pairs (log scale)")


def _yerr(estimates: Sequence[Estimate], values: np.ndarray) -> np.ndarray:
    """(2, n) error bar lengths in %: the interval of each estimate (zero where it has none)."""
    err = np.zeros((2, len(estimates)))
    for i, e in enumerate(estimates):
        iv = e.interval()
        if iv is not None:
            err[:, i] = [values[i] - 100 * iv[0], 100 * iv[1] - values[i]]
    return np.clip(err, 0, None)


def place_language_labels(
    ax, shares: Sequence[float], labels: Sequence[str], fontsize: float = 8, max_passes: int = 4
) -> int:
    """Write ``labels`` above the axes at their x = share, and stack them in rows so no two
    overlap: left to right, each label takes the lowest row where it clears (by 2 px) every
    label already there (measured with the renderer). Returns the number of rows."""
    fig = ax.figure
    texts = [
        ax.annotate(
            label,
            xy=(x, 1),
            xycoords=("data", "axes fraction"),
            xytext=(0, 2),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=fontsize,
            annotation_clip=False,
            gid=LABEL_GID,
        )
        for x, label in zip(shares, labels)
    ]
    line = 1.25 * fontsize
    rows = 1
    # Layout may move the axes after the first draw; place again until the placement holds.
    for _ in range(max_passes):
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        spans = [t.get_window_extent(renderer) for t in texts]
        taken: List[List[Tuple[float, float]]] = []
        changed = False
        for i in sorted(range(len(texts)), key=lambda i: (spans[i].x0, i)):
            lo, hi = spans[i].x0 - 2, spans[i].x1 + 2
            row = next((r for r, used in enumerate(taken) if all(hi <= a or lo >= b for a, b in used)), len(taken))
            if row == len(taken):
                taken.append([])
            taken[row].append((lo, hi))
            pos = (0, 2 + row * line)
            if tuple(texts[i].xyann) != pos:
                texts[i].xyann, changed = pos, True
        rows = len(taken)
        if not changed:
            break
    return rows


def make_figure(study: Study, direction: str = "mean", dodge: float = 0.01):
    """Two panels. (a) accuracy against share (log x): markers with error bars per cell (colour =
    setting, marker = alpha), a least-squares trend against log share per cell over the covered
    languages; languages under ``min_heldout`` hollow and off the fit. (b) accuracy at each
    alpha minus accuracy at alpha = 1, per language, one series per setting and alpha."""
    import logging

    # fairseq leaves the root logger at DEBUG in some entry points; matplotlib is chatty there.
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    langs = [l for l in study.langs if study.shares[l] > 0]  # a log axis cannot hold share 0
    shares = np.array([study.shares[l] for l in langs])
    small = np.array([l not in study.covered for l in langs], dtype=bool)
    settings = list(dict.fromkeys(c.setting for c in study.cells))
    alphas = sorted({c.alpha for c in study.cells}, reverse=True)
    colour = {s: plt.get_cmap("tab10")(i % 10) for i, s in enumerate(settings)}
    marker = {a: MARKERS[i % len(MARKERS)] for i, a in enumerate(alphas)}
    style = {a: LINESTYLES[i % len(LINESTYLES)] for i, a in enumerate(alphas)}

    fig, (ax_a, ax_b) = plt.subplots(1, 2, figsize=(14, 6), layout="constrained")

    def series(ax, k, n_series, estimates, cell, label):
        """Markers with error bars, filled for covered languages and hollow for small ones,
        dodged sideways (in log x) so the series at one language stay apart."""
        x = shares * 10 ** ((k - (n_series - 1) / 2) * dodge)
        y = np.array([np.nan if e.value is None else 100 * e.value for e in estimates])
        err = _yerr(estimates, y)
        kw = dict(
            color=colour[cell.setting],
            marker=marker[cell.alpha],
            linestyle="none",
            capsize=2,
            markersize=5,
            elinewidth=0.8,
        )
        for mask, extra in (
            (~small, dict(label=label)),
            (small, dict(markerfacecolor="none", label="_" + label + " (small)")),
        ):
            if mask.any():
                ax.errorbar(x[mask], y[mask], yerr=err[:, mask], **kw, **extra)
        return y

    for k, cell in enumerate(study.cells):
        y = series(
            ax_a,
            k,
            len(study.cells),
            [study.estimate(study.lang_stat(l), cell, direction) for l in langs],
            cell,
            cell.label,
        )
        fit = ~small & ~np.isnan(y)
        if len(set(shares[fit])) >= 2:
            slope, intercept = stats.log_share_trend(shares[fit], y[fit])
            xs = np.geomspace(shares[fit].min(), shares[fit].max(), 50)
            ax_a.plot(
                xs,
                intercept + slope * np.log10(xs),
                color=colour[cell.setting],
                linestyle=style[cell.alpha],
                linewidth=1.2,
                label=f"_trend {cell.label}",
            )
    _percent_axis(ax_a, plt)
    ax_a.set_ylabel(f"top-1 retrieval accuracy, % ({study.metric}, {DIRECTION_NAMES[direction]})")

    effects = [(c, study.baseline(c)) for c in study.cells if study.baseline(c) is not None]
    for k, (cell, base) in enumerate(effects):
        series(
            ax_b,
            k,
            len(effects),
            [study.estimate(study.lang_stat(l), cell, direction, baseline=base) for l in langs],
            cell,
            f"{cell.label} − α=1",
        )
    ax_b.axhline(0, color="0.4", linewidth=0.8)
    _percent_axis(ax_b, plt)
    ax_b.set_ylabel("accuracy at α minus accuracy at α = 1, points")
    if not effects:
        ax_b.text(
            0.5,
            0.5,
            "needs alpha = 1 and another alpha of the same setting",
            transform=ax_b.transAxes,
            ha="center",
            va="center",
        )
        ax_b.set_xlim(shares.min() / 2, shares.max() * 2)

    uncertainty = (
        "error bars: ±1 sd over seeds"
        if any(len(c.seeds) > 1 for c in study.cells)
        else "error bars: 95 % bootstrap interval over held-out pairs"
    )
    if any(len(c.seeds) > 1 for c in study.cells) and any(len(c.seeds) == 1 for c in study.cells):
        uncertainty = "error bars: ±1 sd over seeds, or 95 % bootstrap interval (one seed)"
    hollow = f"; hollow: n < {study.min_heldout} held-out pairs, not fitted" if small.any() else ""
    labels = [l + (f" (n={study.n[l]})" if l not in study.covered else "") for l in langs]
    titles = (
        (ax_a, f"(a) accuracy vs. data share; lines: least-squares trend per setting{hollow}"),
        (ax_b, "(b) the imbalance effect: who gains, who pays when the mix is flattened"),
    )
    for ax, _ in titles:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, ncol=2 if len(ax.get_legend_handles_labels()[0]) > 8 else 1, loc="best")
    fig.suptitle(f"Sentence retrieval vs. pre-training data share ({uncertainty})", fontsize=11)
    for ax, title in titles:
        rows = place_language_labels(ax, shares, labels)
        ax.set_title(title, fontsize=9, pad=4 + rows * 1.25 * 8 + 2)
    # The titles changed the layout: place the labels once more against the final geometry.
    for ax, _ in titles:
        for t in [t for t in ax.texts if t.get_gid() == LABEL_GID]:
            t.remove()
        place_language_labels(ax, shares, labels)
    return fig


def save_figure(fig, path_stem: str) -> List[str]:
    """``STEM.png`` (150 dpi) and ``STEM.pdf``, each written to a temp name and renamed."""
    paths = []
    for ext, kw in (("png", {"dpi": 150}), ("pdf", {})):
        path, tmp = f"{path_stem}.{ext}", f"{path_stem}.tmp{os.getpid()}.{ext}"
        fig.savefig(tmp, **kw)
        os.replace(tmp, path)
        paths.append(path)
    return paths


def write_report(
    results: Sequence[dict], out_dir: str, metric: str = "margin", min_heldout: int = stats.MIN_HELDOUT
) -> dict:
    """Write OUT/results.md, OUT/results.json and OUT/retrieval_vs_share.{png,pdf}; return the paths."""
    from fairseq_weam.core.atomic import write_json_atomic

    study = Study(results, metric, min_heldout)
    paths = {"markdown": os.path.join(out_dir, "results.md"), "json": os.path.join(out_dir, "results.json")}
    tmp = f"{paths['markdown']}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(markdown_report(study))
    os.replace(tmp, paths["markdown"])
    write_json_atomic(paths["json"], json_report(study))
    fig = make_figure(study)
    paths["figure"], paths["figure_pdf"] = save_figure(fig, os.path.join(out_dir, "retrieval_vs_share"))
    import matplotlib.pyplot as plt

    plt.close(fig)
    return paths
