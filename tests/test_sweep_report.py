"""The sweep report on crafted runs with known per-pair hits: the tables (mean ± sd over seeds,
bootstrap intervals for one seed, the marked exclusion and the fair average), the generated
summary (slope, thirds, objective differences), results.json, and the two-panel figure checked
on its matplotlib objects (series, error bars, hollow markers, log x, non-overlapping labels)."""

import json

import numpy as np
import pytest

from fairseq_weam.evaluation import report, retrieval, stats, sweep_bli, sweep_figure, sweep_study, sweep_tables

# share, held-out pairs. Shares one decade apart, so slopes per decade are easy to do by hand;
# sw has too few held-out pairs for the default --min-heldout 100.
LANGS = {"fr": (0.5, 100), "de": (0.05, 100), "hi": (0.005, 200), "sw": (0.0005, 10)}


def hits(n, acc):
    k = int(round(acc * n))
    v = np.arange(n) < k
    return {m: {"src2tgt": v, "tgt2src": v} for m in retrieval.METHODS}


def run(setting, alpha, seed, accs, langs=LANGS):
    return {
        "name": f"{setting}_a{alpha:g}_s{seed}",
        "setting": setting,
        "alpha": alpha,
        "seed": seed,
        "data": {l: {"train_pairs": int(1e4 * s), "share": s, "sampled_share": s} for l, (s, _) in langs.items()},
        "eval": {"layer": "middle", "layer_index": 1, "pooling": "mean"},
        "retrieval": {l: retrieval.language_result(hits(n, accs[l])) for l, (_, n) in langs.items()},
    }


def multi_seed_runs():
    return [
        run("weam", 1.0, 1, {"fr": 0.80, "de": 0.50, "hi": 0.20, "sw": 1.0}),
        run("weam", 0.3, 1, {"fr": 0.70, "de": 0.50, "hi": 0.40, "sw": 1.0}),
        run("tlm", 1.0, 1, {"fr": 0.30, "de": 0.20, "hi": 0.10, "sw": 0.0}),
        run("weam", 1.0, 2, {"fr": 0.84, "de": 0.52, "hi": 0.22, "sw": 0.8}),
        run("weam", 0.3, 2, {"fr": 0.72, "de": 0.50, "hi": 0.44, "sw": 0.8}),
        run("tlm", 1.0, 2, {"fr": 0.32, "de": 0.22, "hi": 0.12, "sw": 0.1}),
    ]


def table_rows(md, header_start):
    lines = md.splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith(header_start))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


def test_seeds_tables_mean_sd_and_fair_average():
    study = sweep_study.Study(multi_seed_runs())
    assert [c.label for c in study.cells] == ["weam, α=1", "weam, α=0.3", "tlm, α=1"]
    assert [c.seeds for c in study.cells] == [[1, 2]] * 3
    # Settings in order of appearance, alpha from 1 down, seeds sorted, whatever the run order.
    backwards = sweep_study.Study(multi_seed_runs()[::-1])
    assert [(c.label, c.seeds) for c in backwards.cells] == [
        ("tlm, α=1", [1, 2]),
        ("weam, α=1", [1, 2]),
        ("weam, α=0.3", [1, 2]),
    ]
    assert study.covered == ["fr", "de", "hi"] and study.bottom == ["hi"] and study.top == ["fr"]
    rows = table_rows(sweep_tables.accuracy_table(study), "| setting")
    assert rows[0] == ["setting", "alpha", "seeds", "fr (50%)", "de (5%)", "hi (0.5%)", "sw (0.05%) n=10 †", "avg"]
    # fr of weam alpha 1: 80 and 84 -> 82 ± 2.83; the average of fr, de, hi (not sw): seed 1
    # (80 + 50 + 20) / 3 = 50, seed 2 (84 + 52 + 22) / 3 = 52.67 -> 51.33 ± 1.89.
    assert rows[2] == ["weam", "1", "2", "82.0 ± 2.8", "51.0 ± 1.4", "21.0 ± 1.4", "90.0 ± 14.1", "51.3 ± 1.9"]
    assert sweep_tables.coverage_note(study) == (
        "avg: language-macro average; covers fr, de, hi (>= 100 held-out pairs); leaves out sw (marked †)."
    )
    # With the rule relaxed, sw joins the average: (80 + 50 + 20 + 100) / 4 = 62.5 and
    # (84 + 52 + 22 + 80) / 4 = 59.5: 61 ± 2.12.
    relaxed = sweep_study.Study(multi_seed_runs(), min_heldout=10)
    assert relaxed.covered == ["fr", "de", "hi", "sw"]
    assert table_rows(sweep_tables.accuracy_table(relaxed), "| setting")[2][-1] == "61.0 ± 2.1"


def test_summary_slope_thirds_and_objective_differences():
    study = sweep_study.Study(multi_seed_runs())
    md = sweep_tables.summary(study)
    rows = table_rows(md, "| setting")
    assert rows[0] == [
        "setting",
        "alpha",
        "seeds",
        "avg",
        "slope / 10x share",
        "Δ bottom third vs α=1",
        "Δ top third vs α=1",
    ]
    # Slopes, shares a decade apart: seed 1 (80 - 20) / 2 = 30, seed 2 (84 - 22) / 2 = 31 per decade.
    # Thirds of 3 languages: hi at the bottom, fr at the top; alpha 0.3 - alpha 1, by seed:
    # hi +20, +22 -> +21 ± 1.41; fr -10, -12 -> -11 ± 1.41.
    assert rows[2] == ["weam", "1", "2", "51.3 ± 1.9", "+30.5 ± 0.7", "-", "-"]
    # alpha 0.3: average (70 + 50 + 40) / 3 = 53.3 and (72 + 50 + 44) / 3 = 55.3; slopes 15 and 14.
    assert rows[3] == ["weam", "0.3", "2", "54.3 ± 1.4", "+14.5 ± 0.7", "+21.0 ± 1.4", "-11.0 ± 1.4"]
    assert "Bottom third by share: hi; top third: fr" in md
    # weam - tlm at alpha 1: 51.33 - 21 = 30.3 > 1.89 + 1.41: beyond the seed spread.
    assert "* α=1: weam > tlm (+30.3)\n" in md
    diffs = study.objective_differences()
    assert len(diffs) == 1 and diffs[0]["rule"] == "seed spread" and diffs[0]["exceeds"] is True
    # A gap smaller than the spread is not called: tlm with seed-to-seed scatter of 30 points.
    noisy = [r for r in multi_seed_runs() if r["setting"] != "tlm"]
    noisy += [run("tlm", 1.0, 1, {l: 0.2 for l in LANGS}), run("tlm", 1.0, 2, {l: 0.8 for l in LANGS})]
    assert "* α=1: weam ~ tlm (+1.3)\n" in sweep_tables.summary(sweep_study.Study(noisy))


def test_single_seed_cells_get_bootstrap_intervals():
    runs = [r for r in multi_seed_runs() if r["seed"] == 1]
    study = sweep_study.Study(runs)
    rows = table_rows(sweep_tables.accuracy_table(study), "| setting")

    def independent_interval(columns, weights=None):  # the documented rule, written out
        means = []
        for j, lang in enumerate(study.langs):
            v = retrieval.pair_scores(runs[0]["retrieval"][lang], "margin")
            idx = np.random.default_rng([stats.BOOTSTRAP_SEED, j]).integers(0, len(v), (stats.N_BOOTSTRAP, len(v)))
            means.append(v[idx].mean(1))
        return np.quantile(np.stack(means, 1)[:, columns].mean(1), [0.025, 0.975])

    lo, hi = independent_interval([0])
    assert rows[2][3] == f"80.0 [{100 * lo:.1f}, {100 * hi:.1f}]"
    assert lo == pytest.approx(0.8 - 1.96 * 0.04, abs=0.02) and hi == pytest.approx(0.8 + 1.96 * 0.04, abs=0.02)
    lo, hi = independent_interval([0, 1, 2])
    assert rows[2][-1] == f"50.0 [{100 * lo:.1f}, {100 * hi:.1f}]"
    md = sweep_tables.summary(study)
    assert (
        "single-seed cells show the value [95 % bootstrap interval over held-out pairs, 1000 resamples, "
        f"bootstrap seed {stats.BOOTSTRAP_SEED}]" in md
    )
    # The alpha effect of one seed: a paired bootstrap (same resampled pairs at both alphas).
    d = study.estimate(study.group_stat(["hi"]), study.cells[1], baseline=study.cells[0])
    assert d.value == pytest.approx(0.2) and d.ci[0] > 0.05 and d.ci[1] < 0.35
    # Objectives of one seed are told apart by the paired bootstrap: 50 vs 20 on 400 pairs.
    (diff,) = study.objective_differences()
    assert diff["rule"] == "bootstrap" and diff["exceeds"] is True and diff["diff"] == pytest.approx(0.3)


def test_results_json_has_both_averages(tmp_path):
    study = sweep_study.Study(multi_seed_runs())
    out = sweep_tables.json_report(study)
    avg = out["cells"][0]["average"]
    assert avg["covers"] == ["fr", "de", "hi"] and avg["left_out"] == ["sw"]
    assert avg["macro"]["value"] == pytest.approx((0.5 + 1.58 / 3) / 2)
    # Pair-weighted (hi has 200 pairs): seed 1 (80 + 50 + 40) / 400, seed 2 (84 + 52 + 44) / 400.
    assert avg["pair_weighted"]["value"] == pytest.approx((170 / 400 + 180 / 400) / 2)
    assert avg["pair_weighted"]["sd"] == pytest.approx(np.std([170 / 400, 180 / 400], ddof=1))
    assert out["bootstrap"] == {"resamples": 1000, "seed": stats.BOOTSTRAP_SEED, "level": 0.95}
    assert out["objective_differences"][0]["exceeds"] is True
    json.dumps(out)  # serializable as written


def errorbars(ax):
    """{label: (x, y, lower, upper)} of the axes' error-bar containers (bars in data units)."""
    out = {}
    for c in ax.containers:
        line, _, (bars,) = c.lines
        segs = np.array(bars.get_segments())
        out[c.get_label()] = (
            np.asarray(line.get_xdata()),
            np.asarray(line.get_ydata()),
            segs[:, 0, 1],
            segs[:, 1, 1],
            line.get_markerfacecolor(),
        )
    return out


def test_figure_panels_series_errorbars_and_hollow_small_languages():
    fig = sweep_figure.make_figure(sweep_study.Study(multi_seed_runs()))
    assert len(fig.axes) == 2
    ax_a, ax_b = fig.axes
    assert ax_a.get_xscale() == "log" and ax_b.get_xscale() == "log"
    bars = errorbars(ax_a)
    assert set(bars) == {
        "weam, α=1",
        "weam, α=0.3",
        "tlm, α=1",
        "_weam, α=1 (small)",
        "_weam, α=0.3 (small)",
        "_tlm, α=1 (small)",
    }
    x, y, lower, upper, face = bars["weam, α=1"]
    np.testing.assert_allclose(y, [82, 51, 21])  # fr, de, hi: means over seeds, %
    np.testing.assert_allclose(
        upper - y, [np.std([80, 84], ddof=1), np.std([50, 52], ddof=1), np.std([20, 22], ddof=1)]
    )
    np.testing.assert_allclose(x, np.array([0.5, 0.05, 0.005]) * 10 ** (-0.01), rtol=1e-9)  # dodged left
    assert face != "none"
    x, y, _, _, face = bars["_weam, α=1 (small)"]
    assert face == "none" and y.tolist() == pytest.approx([90.0])  # sw, hollow
    # The trend is fitted on fr, de, hi only: 82, 51, 21 a decade apart -> slope 30.5 per decade.
    trend = next(l for l in ax_a.get_lines() if l.get_label() == "_trend weam, α=1")
    tx, ty = trend.get_xdata(), trend.get_ydata()
    assert (ty[-1] - ty[0]) / np.log10(tx[-1] / tx[0]) == pytest.approx(30.5)
    assert tx.min() == pytest.approx(0.005) and tx.max() == pytest.approx(0.5)
    legend = [t.get_text() for t in ax_a.get_legend().get_texts()]
    assert legend == ["weam, α=1", "weam, α=0.3", "tlm, α=1"]
    # Panel (b): one series (weam has alpha 1 and 0.3; tlm only alpha 1), paired differences.
    effect = errorbars(ax_b)
    assert set(effect) == {"weam, α=0.3 − α=1", "_weam, α=0.3 − α=1 (small)"}
    _, y, lower, upper, _ = effect["weam, α=0.3 − α=1"]
    np.testing.assert_allclose(y, [-11, -1, 21])  # fr -10, -12; de 0, -2; hi +20, +22
    np.testing.assert_allclose(upper - y, [np.sqrt(2)] * 3)
    np.testing.assert_allclose(y - lower, [np.sqrt(2)] * 3)
    assert any(l.get_ydata()[0] == 0 for l in ax_b.get_lines())  # the zero line
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_language_labels_do_not_overlap():
    # hi / ar and de / ru / fr sit close on the log axis: their labels would collide in one row.
    langs = {
        "fr": (0.24, 500),
        "ru": (0.21, 500),
        "de": (0.20, 500),
        "el": (0.061, 400),
        "ar": (0.016, 300),
        "hi": (0.015, 300),
        "sw": (0.0002, 6),
    }
    runs = [run("weam", a, 1, {l: 0.5 for l in langs}, langs) for a in (1.0, 0.3)]
    fig = sweep_figure.make_figure(sweep_study.Study(runs))
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        labels = [t for t in ax.texts if t.get_gid() == sweep_figure.LABEL_GID]
        assert sorted(t.get_text() for t in labels) == ["ar", "de", "el", "fr", "hi", "ru", "sw (n=6)"]
        boxes = {t.get_text(): t.get_window_extent(renderer) for t in labels}
        for i, a in enumerate(labels):
            for b in labels[i + 1 :]:
                assert not boxes[a.get_text()].overlaps(boxes[b.get_text()]), (a.get_text(), b.get_text())
        # They were nudged: hi and ar share x range, so they sit in different rows.
        assert boxes["hi"].x1 > boxes["ar"].x0 and boxes["hi"].y0 != boxes["ar"].y0
        assert all(box.y0 >= ax.get_window_extent(renderer).y1 for box in boxes.values())  # above the plot
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_write_report_files(tmp_path):
    paths = report.write_report(multi_seed_runs(), str(tmp_path))
    md = (tmp_path / "results.md").read_text()
    assert md.startswith("# Imbalance sweep: sentence retrieval per language\n\n## Summary\n")
    assert (tmp_path / "retrieval_vs_share.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "retrieval_vs_share.pdf").read_bytes()[:5] == b"%PDF-"
    assert json.loads((tmp_path / "results.json").read_text())["runs"][0]["name"] == "weam_a1_s1"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "results.json",
        "results.md",
        "retrieval_vs_share.pdf",
        "retrieval_vs_share.png",
    ]  # no temp files left
    assert paths["figure_pdf"].endswith(".pdf")


def bli_result(p1_a, p1_b, p5, n_b=10):
    """Two lexicons, both directions: CSLS P@1 p1_a (en-fr, 10 queries) and p1_b (en-de, n_b
    queries), P@5 p5 everywhere."""

    def lex(p1, n):
        d = {"n": n, "csls": {"p@1": p1, "p@5": p5}, "cosine": {"p@1": 0.0, "p@5": 0.0}}
        return {"langs": ["en", "xx"], "pairs": n, "vectors": {"isolated": {"src2tgt": d, "tgt2src": d}}}

    return {"en-fr": lex(p1_a, 10), "en-de": lex(p1_b, n_b)}


def test_bli_table_averages_lexicons_and_directions_then_seeds():
    runs = multi_seed_runs()
    runs[0]["bli"] = bli_result(10.0, 20.0, 50.0)  # weam a1 s1: P@1 15
    runs[3]["bli"] = bli_result(20.0, 30.0, 60.0)  # weam a1 s2: P@1 25
    runs[2]["bli"] = bli_result(4.0, 6.0, 8.0)  # tlm a1 s1: P@1 5
    assert sweep_bli.bli_score(runs[0]) == 15.0 and sweep_bli.bli_score(runs[0], at="p@5") == 50.0
    assert sweep_bli.bli_score(runs[1]) is None
    # Each query counts once: 10 queries at 10 % and 30 at 30 % make 25 %.
    assert sweep_bli.bli_score({"bli": bli_result(10.0, 30.0, 50.0, n_b=30)}) == pytest.approx(25.0)
    rows = table_rows(sweep_bli.bli_table(runs), "| setting")
    assert rows[2:] == [
        ["weam", "1", "2", f"20.0 ± {np.std([15, 25], ddof=1):.1f}", f"55.0 ± {np.std([50, 60], ddof=1):.1f}"],
        ["tlm", "1", "1", "5.0", "8.0"],
    ]
    md = sweep_tables.markdown_report(sweep_study.Study(runs))
    assert "## Word translation (BLI)" in md


def continued_runs():
    """The continued regime: a base per seed and the cells of multi_seed_runs continued from it."""
    base = [
        run("base", 0.7, 1, {"fr": 0.60, "de": 0.30, "hi": 0.10, "sw": 0.5}),
        run("base", 0.7, 2, {"fr": 0.62, "de": 0.30, "hi": 0.14, "sw": 0.5}),
    ]
    return base + [{**r, "restore": f"base_s{r['seed']}.pt"} for r in multi_seed_runs()]


def test_change_against_the_base_by_hand(tmp_path):
    study = sweep_study.Study(continued_runs())
    assert study.base.label == "base, α=0.7" and [c.label for c in study.base_changes()] == [
        "weam, α=1",
        "weam, α=0.3",
        "tlm, α=1",
    ]
    md = sweep_tables.markdown_report(study)
    rows = table_rows(md[md.index("## Change against the base") :], "| setting")
    assert rows[0] == ["setting", "alpha", "seeds", "fr (50%)", "de (5%)", "hi (0.5%)", "sw (0.05%) n=10 †", "avg"]
    # weam alpha 1 minus the base, by seed: fr +20, +22; de +20, +22; hi +10, +8; sw +50, +30;
    # the average of fr, de, hi: seed 1 50/3 = 16.67, seed 2 52/3 = 17.33 -> 17.0 ± 0.47.
    assert rows[2] == ["weam", "1", "2", "+21.0 ± 1.4", "+21.0 ± 1.4", "+9.0 ± 1.4", "+40.0 ± 14.1", "+17.0 ± 0.5"]
    # tlm alpha 1: fr -30, -30; de -10, -8; hi 0, -2; sw -50, -40; average -40/3 both seeds.
    assert rows[4] == ["tlm", "1", "2", "-30.0 ± 0.0", "-9.0 ± 1.4", "-1.0 ± 1.4", "-45.0 ± 7.1", "-13.3 ± 0.0"]
    assert len(rows) == 5  # no row for the base itself
    summary_rows = table_rows(sweep_tables.summary(study), "| setting")
    assert summary_rows[0][-1] == "Δ avg vs base"
    assert summary_rows[2][0] == "base" and summary_rows[2][-1] == "-"
    assert summary_rows[3][:2] == ["weam", "1"] and summary_rows[3][-1] == "+17.0 ± 0.5"
    cells = {(c["setting"], c["alpha"]): c for c in sweep_tables.json_report(study)["cells"]}
    assert cells[("base", 0.7)]["change_vs_base"] is None
    change = cells[("weam", 1.0)]["change_vs_base"]
    assert change["per_language"]["hi"]["value"] == pytest.approx(0.09)
    assert change["per_language"]["hi"]["sd"] == pytest.approx(np.std([0.10, 0.08], ddof=1))
    assert change["macro"]["value"] == pytest.approx(0.17)
    # One seed: the change is paired by resampled pair, its interval from the bootstrap.
    single = sweep_study.Study([r for r in continued_runs() if r["seed"] == 1])
    d = single.base_change(single.lang_stat("fr"), single.cells[1])
    assert d.value == pytest.approx(0.20) and d.ci[0] > 0.05 and d.ci[1] < 0.35
    # The figure gets a third panel: per language, each cell minus the base.
    fig = sweep_figure.make_figure(study)
    panel_c = errorbars(fig.axes[2])
    labels = {"weam, α=1 − base", "weam, α=0.3 − base", "tlm, α=1 − base"}
    assert len(fig.axes) == 3 and set(panel_c) == labels | {f"_{l} (small)" for l in labels}
    assert np.allclose(panel_c["weam, α=1 − base"][1], [21.0, 21.0, 9.0])  # fr, de, hi, filled
    assert np.allclose(panel_c["_weam, α=1 − base (small)"][1], [40.0])  # sw, hollow
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_no_base_no_base_columns():
    study = sweep_study.Study(multi_seed_runs())
    assert study.base is None and study.base_changes() == []
    assert "Δ avg vs base" not in sweep_tables.summary(study)
    assert "## Change against the base" not in sweep_tables.markdown_report(study)
