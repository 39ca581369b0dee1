"""Tables and figures of the imbalance sweep: retrieval accuracy per language against the
language's share of the training data."""

import os
from typing import List, Sequence

import numpy as np

DIRECTIONS = ("mean", "src2tgt", "tgt2src")


def accuracy(result: dict, lang: str, metric: str = "margin", direction: str = "mean") -> float:
    return result["retrieval"][lang][metric][direction]


def languages_by_share(results: Sequence[dict]) -> List[str]:
    """Held-out languages, most training data first (languages without training data last)."""
    data = results[0]["data"]
    langs = list(results[0]["retrieval"])
    return sorted(langs, key=lambda l: -data.get(l, {}).get("share", 0.0))


def _cells(rows):
    return "\n".join("| " + " | ".join(map(str, r)) + " |" for r in rows) + "\n"


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
        rows.append([lang, d["train_pairs"], f"{100 * d['share']:.2f}%"]
                    + [f"{100 * by_alpha[a]['data'][lang]['sampled_share']:.2f}%" for a in alphas])
    return _cells(rows)


def _lang_header(result: dict, lang: str) -> str:
    """``fr (24%)``; a small held-out set is flagged with its size, its accuracy is coarse."""
    share = result["data"].get(lang, {}).get("share")
    text = f"{lang} ({100 * share:.2g}%)" if share is not None else f"{lang} (no train)"
    n = result["retrieval"][lang]["n"]
    return text + (f" n={n}" if n < 100 else "")


def accuracy_table(results: Sequence[dict], metric: str = "margin", direction: str = "mean") -> str:
    """One row per run, one column per language (most data first), plus the average."""
    langs = languages_by_share(results)
    header = ["setting", "alpha"] + [_lang_header(results[0], l) for l in langs] + ["avg"]
    rows = [header, ["---"] * len(header)]
    for r in results:
        accs = [accuracy(r, l, metric, direction) for l in langs]
        rows.append([r["setting"], f"{r['alpha']:g}"] + [f"{100 * a:.1f}" for a in accs] + [f"{100 * np.mean(accs):.1f}"])
    return _cells(rows)


def markdown_report(results: Sequence[dict], metric: str = "margin") -> str:
    n = {l: results[0]["retrieval"][l]["n"] for l in results[0]["retrieval"]}
    parts = [
        "# Imbalance sweep: sentence retrieval per language\n",
        f"Top-1 retrieval accuracy (%) on the held-out pairs, {metric} scoring, averaged over both "
        f"directions (en->xx and xx->en); column headers give each language's share of the training "
        f"pairs. Held-out pairs per language: {', '.join(f'{l} {k}' for l, k in n.items())}. "
        f"Layer {results[0]['eval'].get('layer_index', results[0]['eval']['layer'])}, "
        f"{results[0]['eval']['pooling']} pooling.\n",
        accuracy_table(results, metric, "mean"),
        "\n## Per direction\n",
        f"\n### en -> xx ({metric})\n\n" + accuracy_table(results, metric, "src2tgt"),
        f"\n### xx -> en ({metric})\n\n" + accuracy_table(results, metric, "tgt2src"),
    ]
    other = [m for m in ("cosine", "margin") if m != metric and m in next(iter(results[0]["retrieval"].values()))]
    for m in other:
        parts.append(f"\n## {m} scoring (mean of both directions)\n\n" + accuracy_table(results, m, "mean"))
    parts.append("\n## Training data and sampling\n\n" + data_table(results))
    return "\n".join(parts)


def plot_accuracy_vs_share(results: Sequence[dict], path: str, metric: str = "margin", direction: str = "mean") -> None:
    """Accuracy against data share (log x), one line per run: colour = objective, line style =
    alpha. Languages without training data cannot sit on a log axis and are left out."""
    import logging

    # fairseq leaves the root logger at DEBUG in some entry points; matplotlib is chatty there.
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    langs = [l for l in languages_by_share(results) if results[0]["data"].get(l, {}).get("share", 0) > 0]
    shares = [results[0]["data"][l]["share"] for l in langs]
    settings = list(dict.fromkeys(r["setting"] for r in results))
    alphas = sorted({r["alpha"] for r in results}, reverse=True)
    colours = plt.get_cmap("tab10")
    styles = ["-", "--", ":", "-."]
    fig, ax = plt.subplots(figsize=(8, 5))
    order = np.argsort(shares)
    for r in results:
        accs = [100 * accuracy(r, l, metric, direction) for l in langs]
        ax.plot(np.asarray(shares)[order], np.asarray(accs)[order],
                color=colours(settings.index(r["setting"]) % 10),
                linestyle=styles[alphas.index(r["alpha"]) % len(styles)], marker="o", markersize=4,
                label=f"{r['setting']}, alpha={r['alpha']:g}")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda x, _: f"{100 * x:.3g}%"))
    # Language names on a top axis at their shares (rotated, so close shares stay readable);
    # a small held-out set gets its size, as its accuracy moves in big steps.
    sizes = {l: results[0]["retrieval"][l]["n"] for l in langs}
    top = ax.secondary_xaxis("top")
    top.set_xticks(shares, [l + (f" (n={sizes[l]})" if sizes[l] < 100 else "") for l in langs],
                   rotation=90, fontsize=7)
    top.xaxis.set_minor_locator(plt.NullLocator())
    ax.set_xlabel("language's share of the training pairs (log scale)")
    ax.set_ylabel(f"top-1 retrieval accuracy, % ({metric}, {'both directions' if direction == 'mean' else direction})")
    ax.set_title("Sentence retrieval vs. pre-training data share")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, ncol=2 if len(results) > 6 else 1)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(results: Sequence[dict], out_dir: str, metric: str = "margin") -> dict:
    """Write OUT/results.md, OUT/results.json and OUT/retrieval_vs_share.png; return the paths."""
    from .sweep import write_json_atomic

    paths = {k: os.path.join(out_dir, n) for k, n in
             (("markdown", "results.md"), ("json", "results.json"), ("figure", "retrieval_vs_share.png"))}
    with open(paths["markdown"], "w") as f:
        f.write(markdown_report(results, metric))
    write_json_atomic(paths["json"], list(results))
    plot_accuracy_vs_share(results, paths["figure"], metric)
    return paths
