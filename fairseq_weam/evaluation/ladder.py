"""Statistics of a share ladder (``fairseq-weam-sweep --ladder el:1,0.3,0.1,0.03``): what a
language's *own* amount of training data does to its retrieval, everything else held fixed.

A *ladder* is one laddered language ``L`` under one objective (setting x alpha); its *rungs* are
the fractions of ``L``'s training pairs a run kept (rung 1 = the grid point's full-data run).
For each ladder:

* **curve**: ``L``'s accuracy at each rung against its training pairs, mean and sd over seeds;
* **own slope**: least squares of accuracy on log10(``L``'s training pairs) over the rungs,
  fitted per seed (points per tenfold of its own data); mean ± sd over seeds;
* **half rung**: the smallest rung ``f`` such that every rung from 1 down to ``f`` reaches half
  of the full-data accuracy (mean over seeds; no chance correction); None if rung 1 is at 0;
* **effect on the others**: for every other language (with enough held-out pairs), its accuracy
  at the smallest rung minus at rung 1, paired by seed, and the macro average of those changes;
* **cross-language slope**: the report's slope, accuracy on log10(share) across the languages
  of the full-data runs (per seed, mean ± sd), and ``own / cross``, the part of that slope a
  tenfold cut of the language's own data reproduces.

Noise (as the report's ``summary`` decides objective differences, see ``stats``): a change is
beyond the noise when, with 2+ seeds at both rungs, ``|mean change| > sd_rung + sd_full`` (the ±1
sd bands do not overlap), or, with one seed, when the paired 95 % bootstrap interval over
held-out pairs excludes 0; undecided (None) otherwise (mixed seed counts, no per-pair hits).
With one seed, slopes get a bootstrap interval the same way.
"""

import os
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

from fairseq_weam.evaluation import stats
from fairseq_weam.evaluation.retrieval import pair_scores
from fairseq_weam.evaluation.sweep_study import Estimate


@dataclass
class Rung:
    fraction: float
    pairs: int  # the laddered language's training pairs at this rung
    runs: "OrderedDict[int, dict]"  # seed -> run result


@dataclass
class Ladder:
    lang: str
    setting: str
    alpha: float
    rungs: List[Rung] = field(default_factory=list)  # rung 1 first, then smaller

    @property
    def label(self) -> str:
        return f"{self.setting}, α={self.alpha:g}"


def accuracy(run: dict, lang: str, metric: str = "margin", direction: str = "mean") -> float:
    return run["retrieval"][lang][metric][direction]


def find_ladders(results: Sequence[dict]) -> List[Ladder]:
    """Every (laddered language, setting, alpha) that has its rung-1 runs and at least one rung
    below 1; languages in order of first appearance, then settings in order of appearance,
    alphas from 1 down, rungs from 1 down."""
    full, rungs = OrderedDict(), OrderedDict()
    for r in results:
        sub = r.get("subsample") or {}
        if len(sub) > 1:
            raise ValueError(f"{r['name']}: a ladder run subsamples one language, got {sub}")
        key = (r["setting"], r["alpha"])
        if not sub:
            full.setdefault(key, OrderedDict())[r.get("seed", 1)] = r
        else:
            ((lang, f),) = sub.items()
            rungs.setdefault(lang, OrderedDict()).setdefault(key, OrderedDict()).setdefault(float(f), OrderedDict())[
                r.get("seed", 1)
            ] = r
    settings = list(dict.fromkeys(r["setting"] for r in results))
    out = []
    for lang, cells in rungs.items():
        for key in sorted(cells, key=lambda k: (settings.index(k[0]), -k[1])):
            if key not in full:
                continue
            ladder = Ladder(lang, key[0], key[1])
            for f, runs in [(1.0, full[key])] + sorted(cells[key].items(), key=lambda kv: -kv[0]):
                runs = OrderedDict(sorted(runs.items()))
                pairs = next(iter(runs.values()))["data"][lang]["train_pairs"]
                ladder.rungs.append(Rung(f, int(pairs), runs))
            out.append(ladder)
    return out


def beyond_noise(diff: float, seeds: int, sd_a: Optional[float], sd_b: Optional[float], ci=None) -> Optional[bool]:
    """The report's rule for two cells paired over ``seeds``: with 2+ seeds, |diff| > sd_a + sd_b
    (their ±1 sd bands do not overlap); with one, the paired bootstrap interval ``ci`` of the
    difference excludes 0; None (undecided) without an interval."""
    if seeds > 1:
        return bool(abs(diff) > sd_a + sd_b)
    if ci is not None:
        return bool(ci[0] > 0 or ci[1] < 0)
    return None


class LadderStats:
    """Ladder statistics of a sweep's results (full-data runs plus ``--ladder`` rung runs)."""

    def __init__(
        self,
        results: Sequence[dict],
        metric: str = "margin",
        direction: str = "mean",
        min_heldout: int = stats.MIN_HELDOUT,
        n_boot: int = stats.N_BOOTSTRAP,
        boot_seed: int = stats.BOOTSTRAP_SEED,
    ):
        self.results, self.metric, self.direction = list(results), metric, direction
        self.min_heldout, self.n_boot, self.boot_seed = min_heldout, n_boot, boot_seed
        self.ladders = find_ladders(self.results)
        first = next((r for r in self.results if not r.get("subsample")), self.results[0])
        self.langs = list(first["retrieval"])
        self.n = {l: first["retrieval"][l]["n"] for l in self.langs}
        self.covered = stats.covered_languages(self.n, min_heldout)
        self._boot: Dict[str, Optional[np.ndarray]] = {}

    # -- per-run values ---------------------------------------------------------------------
    def acc(self, run: dict, lang: str) -> float:
        return accuracy(run, lang, self.metric, self.direction)

    def boot(self, run: dict) -> Optional[np.ndarray]:
        """``(n_boot, L)`` bootstrap means of the run's per-pair scores, languages in
        ``self.langs`` order: every run resamples the same pairs (paired)."""
        if run["name"] not in self._boot:
            vectors = [pair_scores(run["retrieval"][l], self.metric, self.direction) for l in self.langs]
            self._boot[run["name"]] = (
                None if any(v is None for v in vectors) else stats.bootstrap_means(vectors, self.n_boot, self.boot_seed)
            )
        return self._boot[run["name"]]

    def _value(self, per_seed: np.ndarray, boot: Optional[np.ndarray] = None) -> Estimate:
        per_seed = np.asarray(per_seed, dtype=np.float64)
        if per_seed.size == 0:
            return Estimate(None)
        if per_seed.size > 1:
            mean, sd = stats.mean_sd(per_seed)
            return Estimate(mean, sd=sd, seeds=int(per_seed.size))
        ci = stats.percentile_interval(boot) if boot is not None else None
        return Estimate(float(per_seed[0]), ci=ci, seeds=1)

    # -- the ladder's statistics ------------------------------------------------------------
    def curve(self, ladder: Ladder) -> List[Estimate]:
        """The laddered language's accuracy at each rung (mean ± sd over seeds)."""
        out = []
        for rung in ladder.rungs:
            runs = list(rung.runs.values())
            boot = self.boot(runs[0]) if len(runs) == 1 else None
            j = self.langs.index(ladder.lang)
            out.append(self._value([self.acc(r, ladder.lang) for r in runs], None if boot is None else boot[:, j]))
        return out

    def common_seeds(self, ladder: Ladder) -> List[int]:
        seeds = set(ladder.rungs[0].runs)
        for rung in ladder.rungs[1:]:
            seeds &= set(rung.runs)
        return sorted(seeds)

    def own_slope(self, ladder: Ladder) -> Estimate:
        """Points (as a fraction) per tenfold of the language's own training pairs: least
        squares on log10(pairs) over the rungs, per seed present at every rung."""
        seeds = self.common_seeds(ladder)
        pairs = [r.pairs for r in ladder.rungs]
        if not seeds or len(set(pairs)) < 2:
            return Estimate(None)
        y = np.array([[self.acc(r.runs[s], ladder.lang) for r in ladder.rungs] for s in seeds])
        slopes = stats.log_share_trend(pairs, y)[0]
        boot = None
        if len(seeds) == 1:
            j = self.langs.index(ladder.lang)
            b = [self.boot(r.runs[seeds[0]]) for r in ladder.rungs]
            if all(x is not None for x in b):
                boot = stats.log_share_trend(pairs, np.stack([x[:, j] for x in b], axis=1))[0]
        return self._value(slopes, boot)

    def half_rung(self, ladder: Ladder) -> Optional[float]:
        """The smallest rung down to which every rung reaches half of the rung-1 accuracy."""
        means = [v.value for v in self.curve(ladder)]
        if means[0] is None or means[0] <= 0:
            return None
        reached = None
        for rung, m in zip(ladder.rungs, means):
            if m is None or m < means[0] / 2:
                break
            reached = rung.fraction
        return reached

    def change(self, ladder: Ladder, langs: Sequence[str], rung: Optional[Rung] = None) -> dict:
        """Mean accuracy of ``langs`` at ``rung`` (default: the smallest) minus at rung 1, paired
        by seed: ``{"change": Estimate, "exceeds": bool|None, "rung": fraction}``."""
        rung = rung or ladder.rungs[-1]
        full = ladder.rungs[0]
        seeds = sorted(set(rung.runs) & set(full.runs))
        if not seeds or not langs:
            return {"change": Estimate(None), "exceeds": None, "rung": rung.fraction}
        idx = [self.langs.index(l) for l in langs]

        def stat(runs):
            return np.array([np.mean([self.acc(runs[s], l) for l in langs]) for s in seeds])

        small, big = stat(rung.runs), stat(full.runs)
        diff = small - big
        boot = None
        if len(seeds) == 1:
            a, b = self.boot(rung.runs[seeds[0]]), self.boot(full.runs[seeds[0]])
            if a is not None and b is not None:
                boot = (a[:, idx] - b[:, idx]).mean(1)
        value = self._value(diff, boot)
        sds = (float(small.std(ddof=1)), float(big.std(ddof=1))) if len(seeds) > 1 else (None, None)
        exceeds = beyond_noise(value.value, len(seeds), *sds, ci=value.ci)
        return {"change": value, "exceeds": exceeds, "rung": rung.fraction}

    def others(self, ladder: Ladder) -> List[str]:
        """The other languages with enough held-out pairs (the ones the effect covers)."""
        return [l for l in self.covered if l != ladder.lang]

    def cross_slope(self, ladder: Ladder) -> Estimate:
        """The report's slope of accuracy on log10(share) across languages, full-data runs."""
        runs = list(ladder.rungs[0].runs.values())
        data = runs[0]["data"]
        fitted = [l for l in self.covered if data.get(l, {}).get("share", 0) > 0]
        shares = [data[l]["share"] for l in fitted]
        if len(set(shares)) < 2:
            return Estimate(None)
        y = np.array([[self.acc(r, l) for l in fitted] for r in runs])
        slopes = stats.log_share_trend(shares, y)[0]
        boot = None
        if len(runs) == 1 and self.boot(runs[0]) is not None:
            boot = stats.log_share_trend(shares, self.boot(runs[0])[:, [self.langs.index(l) for l in fitted]])[0]
        return self._value(slopes, boot)

    def summary(self, ladder: Ladder) -> dict:
        own, cross = self.own_slope(ladder), self.cross_slope(ladder)
        ratio = own.value / cross.value if own.value is not None and cross.value not in (None, 0) else None
        return {
            "lang": ladder.lang,
            "setting": ladder.setting,
            "alpha": ladder.alpha,
            "seeds": self.common_seeds(ladder),
            "rungs": [{"fraction": r.fraction, "pairs": r.pairs} for r in ladder.rungs],
            "curve": self.curve(ladder),
            "own_slope": own,
            "half_rung": self.half_rung(ladder),
            "cross_slope": cross,
            "own_over_cross": ratio,
            "others": {l: self.change(ladder, [l]) for l in self.others(ladder)},
            "others_avg": self.change(ladder, self.others(ladder)),
        }


# -- markdown --------------------------------------------------------------------------------

MARK = {True: "**", False: "", None: ""}


def _table(rows) -> str:
    return "\n".join("| " + " | ".join(map(str, r)) + " |" for r in rows) + "\n"


def _change_text(c: dict) -> str:
    text = c["change"].text(signed=True)
    if text == "-":
        return text
    return f"{MARK[c['exceeds']]}{text}{MARK[c['exceeds']]}" + ("?" if c["exceeds"] is None else "")


def ladder_section(ls: LadderStats) -> str:
    """The results.md section: per laddered language its curve table, then the effect of its
    smallest rung on the other languages."""
    if not ls.ladders:
        return ""
    parts = [
        "## Share ladder: a language's own data, everything else held\n",
        f"Each laddered language keeps a fraction (rung) of its own training pairs (`--subsample`, nested "
        f"subsets identical across objectives and seeds); the other languages keep their full data. Top-1 "
        f"retrieval accuracy (%), {ls.metric} scoring, mean of both directions; mean ± sd over seeds (one "
        f"seed: [95 % bootstrap interval over held-out pairs]). *own slope*: least-squares change per tenfold "
        f"of the language's own training pairs, fitted per seed over the rungs; *half rung*: the smallest rung "
        f"down to which every rung keeps at least half of the full-data accuracy; *cross slope*: the report's "
        f"slope per tenfold share across the languages of the full-data runs; *own / cross*: the part of the "
        f"cross-language slope that cutting the language's own data reproduces.\n",
    ]
    for lang in dict.fromkeys(l.lang for l in ls.ladders):
        ladders = [l for l in ls.ladders if l.lang == lang]
        fractions = sorted({r.fraction for l in ladders for r in l.rungs}, reverse=True)
        pairs = {r.fraction: r.pairs for l in ladders for r in l.rungs}
        header = ["setting", "alpha", "seeds"] + [f"{f:g} ({pairs[f]} pairs)" for f in fractions]
        header += ["own slope / 10x pairs", "half rung", "cross slope / 10x share", "own / cross"]
        rows = [header, ["---"] * len(header)]
        for ladder in ladders:
            s = ls.summary(ladder)
            by_f = dict(zip([r.fraction for r in ladder.rungs], s["curve"]))
            rows.append(
                [ladder.setting, f"{ladder.alpha:g}", len(s["seeds"])]
                + [by_f[f].text() if f in by_f else "-" for f in fractions]
                + [
                    s["own_slope"].text(signed=True),
                    "-" if s["half_rung"] is None else f"{s['half_rung']:g}",
                    s["cross_slope"].text(signed=True),
                    "-" if s["own_over_cross"] is None else f"{s['own_over_cross']:.2f}",
                ]
            )
        parts.append(f"### {lang}: accuracy against its own training pairs\n\n" + _table(rows))
        others = ls.others(ladders[0])
        header = ["setting", "alpha", "rung"] + others + ["others avg"]
        rows = [header, ["---"] * len(header)]
        for ladder in ladders:
            s = ls.summary(ladder)
            rows.append(
                [ladder.setting, f"{ladder.alpha:g}", f"{ladder.rungs[-1].fraction:g}"]
                + [_change_text(s["others"][l]) for l in others]
                + [_change_text(s["others_avg"])]
            )
        parts.append(
            f"### What shrinking {lang} did to the other languages\n\n"
            f"Accuracy at the smallest rung minus at full data (points, paired by seed); **bold**: beyond the "
            f"noise (|change| > sd_rung + sd_full with several seeds, or the paired bootstrap interval excludes "
            f"0 with one), `?`: undecided.\n\n" + _table(rows)
        )
    return "\n".join(parts)


def ladder_json(ls: LadderStats) -> dict:
    def plain(s):
        out = dict(s)
        for k in ("own_slope", "cross_slope"):
            out[k] = s[k].as_json()
        out["curve"] = [v.as_json() for v in s["curve"]]
        out["others"] = {l: {**c, "change": c["change"].as_json()} for l, c in s["others"].items()}
        out["others_avg"] = {**s["others_avg"], "change": s["others_avg"]["change"].as_json()}
        return out

    return {
        "metric": ls.metric,
        "direction": ls.direction,
        "min_heldout": ls.min_heldout,
        "ladders": [plain(ls.summary(l)) for l in ls.ladders],
    }


# -- figure ----------------------------------------------------------------------------------

ALPHA_STYLES = {1.0: "-", 0.3: "--"}


def make_figure(ls: LadderStats):
    """One panel per laddered language: its accuracy against its own training pairs (log x),
    one curve per setting (colour), alpha 1 solid and other alphas dashed; ±1 sd error bars."""
    import logging

    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    langs = list(dict.fromkeys(l.lang for l in ls.ladders))
    settings = list(dict.fromkeys(l.setting for l in ls.ladders))
    colour = {s: plt.get_cmap("tab10")(i % 10) for i, s in enumerate(settings)}
    fig, axes = plt.subplots(1, len(langs), figsize=(6 * len(langs), 4.8), layout="constrained", squeeze=False)
    for ax, lang in zip(axes[0], langs):
        for ladder in [l for l in ls.ladders if l.lang == lang]:
            curve = ls.curve(ladder)
            x = np.array([r.pairs for r in ladder.rungs], dtype=np.float64)
            y = np.array([100 * v.value for v in curve])
            err = np.array([100 * (v.sd if v.sd is not None else 0.0) for v in curve])
            ax.errorbar(
                x,
                y,
                yerr=err,
                color=colour[ladder.setting],
                linestyle=ALPHA_STYLES.get(ladder.alpha, ":"),
                marker="o" if ladder.alpha == 1 else "s",
                markersize=4,
                capsize=2,
                label=ladder.label,
            )
        ax.set_xscale("log")
        ax.grid(True, which="both", alpha=0.3)
        ax.set_xlabel(f"{lang}'s own training pairs (log scale)")
        ax.set_ylabel(f"{lang} top-1 retrieval accuracy, % ({ls.metric})")
        ax.set_title(f"share ladder of {lang}: solid α=1, dashed α=0.3", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle("Accuracy against a language's own training data, everything else held (±1 sd over seeds)")
    return fig


def write_ladder(results: Sequence[dict], out_dir: str, metric: str = "margin", min_heldout: int = stats.MIN_HELDOUT):
    """``(markdown section, paths)``: writes OUT/ladder.json and OUT/ladder.{png,pdf} when the
    results hold ladder runs; ``("", {})`` otherwise."""
    from fairseq_weam.core.atomic import write_json_atomic
    from fairseq_weam.evaluation.sweep_figure import save_figure

    ls = LadderStats(results, metric, min_heldout=min_heldout)
    if not ls.ladders:
        return "", {}
    paths = {"ladder_json": os.path.join(out_dir, "ladder.json")}
    write_json_atomic(paths["ladder_json"], ladder_json(ls))
    fig = make_figure(ls)
    paths["ladder_png"], paths["ladder_pdf"] = save_figure(fig, os.path.join(out_dir, "ladder"))
    import matplotlib.pyplot as plt

    plt.close(fig)
    return ladder_section(ls), paths
