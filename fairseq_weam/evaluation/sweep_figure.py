"""The imbalance sweep's two-panel figure: accuracy against the language's share of the
training data, and the change when the mix is flattened."""

import os
from typing import List, Sequence, Tuple

import numpy as np

from fairseq_weam.evaluation import stats
from fairseq_weam.evaluation.sweep_study import DIRECTION_NAMES, Estimate, Study

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
    """Two panels, three with a base. (a) accuracy against share (log x): markers with error bars per cell (colour =
    setting, marker = alpha), a least-squares trend against log share per cell over the covered
    languages; languages under ``min_heldout`` hollow and off the fit. (b) accuracy at each
    alpha minus accuracy at alpha = 1, per language, one series per setting and alpha. (c) with a
    base row (the continued regime): every other cell minus the base, per language."""
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

    compared = study.base_changes()
    fig, axes = plt.subplots(1, 3 if compared else 2, figsize=(21 if compared else 14, 6), layout="constrained")
    ax_a, ax_b = axes[0], axes[1]

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

    for k, cell in enumerate(compared):
        series(
            axes[2],
            k,
            len(compared),
            [study.base_change(study.lang_stat(l), cell, direction) for l in langs],
            cell,
            f"{cell.label} − base",
        )
    if compared:
        axes[2].axhline(0, color="0.4", linewidth=0.8)
        _percent_axis(axes[2], plt)
        axes[2].set_ylabel("accuracy minus the base's accuracy, points")

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
    ) + (((axes[2], "(c) what continuing from the base added, per language"),) if compared else ())
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
