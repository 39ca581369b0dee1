"""The statistics model of the imbalance sweep: its runs grouped into cells, the languages with
their shares, and every number of the report as an :class:`Estimate`.

A *cell* is one (setting, alpha) grid point; its runs are its seeds. Every number of a cell
is an :class:`Estimate`: the mean and standard deviation over seeds when the cell has several
seeds, else the single run's value with a 95 % bootstrap interval over the held-out pairs
(``stats`` has the rules). Averages, trends and thirds cover only the languages with at least
``min_heldout`` held-out pairs; the others are reported, marked, and drawn hollow.
"""

from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from fairseq_weam.evaluation import stats
from fairseq_weam.evaluation.retrieval import pair_scores
from fairseq_weam.evaluation.sweep_base import BASE_SETTING

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

    @property
    def base(self) -> Optional[Cell]:
        """The base's row (setting ``base``: the continued regime), if the study has one."""
        return next((c for c in self.cells if c.setting == BASE_SETTING), None)

    def base_changes(self) -> List[Cell]:
        """The cells compared with the base: every other one (continued runs and controls)."""
        return [c for c in self.cells if c.setting != BASE_SETTING] if self.base else []

    def base_change(self, stat: Optional[Statistic], cell: Cell, direction: str = "mean") -> Estimate:
        """``stat`` of the cell minus the base, paired by seed (one seed: by resampled pair)."""
        if self.base is None or cell is self.base:
            return Estimate(None)
        return self.estimate(stat, cell, direction, baseline=self.base)

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
            "base_change": self.base_change(self.macro_stat(), cell, direction),
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
