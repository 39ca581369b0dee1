"""Ladder statistics against a hand computation on a small fixture: the curve, the slope per
tenfold of a language's own pairs, the half-accuracy rung, the effect on the other languages
with the report's noise rule, the cross-language slope, and the markdown section; plus the
sweep axis (--ladder parsing, rung runs, names)."""

import math
import os

import pytest

from fairseq_weam.evaluation import ladder, ladder_sweep, sweep

LANGS = ("el", "de", "fr")
SHARES = {"el": 0.1, "de": 0.3, "fr": 0.6}


def run(name, seed, acc, el_pairs=1000, subsample=None):
    return {
        "name": name,
        "setting": "weam",
        "alpha": 1.0,
        "seed": seed,
        "subsample": subsample or {},
        "data": {l: {"train_pairs": el_pairs if l == "el" else 5000, "share": SHARES[l]} for l in LANGS},
        "retrieval": {l: {"n": 200, "margin": {"mean": acc[l]}} for l in LANGS},
    }


# el's own accuracy goes down 20 points per tenfold of its pairs in both seeds; de moves within
# the noise, fr gains 10 points in both seeds when el shrinks to 1 %.
RESULTS = [
    run("weam_a1_s1", 1, {"el": 0.60, "de": 0.50, "fr": 0.30}),
    run("weam_a1_s1_el0.1", 1, {"el": 0.40, "de": 0.48, "fr": 0.35}, 100, {"el": 0.1}),
    run("weam_a1_s1_el0.01", 1, {"el": 0.20, "de": 0.46, "fr": 0.40}, 10, {"el": 0.01}),
    run("weam_a1_s2", 2, {"el": 0.50, "de": 0.40, "fr": 0.32}),
    run("weam_a1_s2_el0.1", 2, {"el": 0.30, "de": 0.42, "fr": 0.37}, 100, {"el": 0.1}),
    run("weam_a1_s2_el0.01", 2, {"el": 0.10, "de": 0.44, "fr": 0.42}, 10, {"el": 0.01}),
]


def sd2(a, b):
    return abs(a - b) / math.sqrt(2)  # sample sd (ddof 1) of two values


def test_ladder_statistics_by_hand():
    ls = ladder.LadderStats(RESULTS, min_heldout=100)
    (lad,) = ls.ladders
    assert (lad.lang, lad.setting, lad.alpha) == ("el", "weam", 1.0)
    assert [(r.fraction, r.pairs, list(r.runs)) for r in lad.rungs] == [
        (1, 1000, [1, 2]),
        (0.1, 100, [1, 2]),
        (0.01, 10, [1, 2]),
    ]
    curve = ls.curve(lad)
    assert [v.value for v in curve] == pytest.approx([0.55, 0.35, 0.15])
    assert [v.sd for v in curve] == pytest.approx([sd2(0.6, 0.5)] * 3)
    # log10 pairs 3, 2, 1 and accuracies falling 0.2 per step: slope 0.2 per tenfold in each seed.
    own = ls.own_slope(lad)
    assert own.value == pytest.approx(0.2) and own.sd == pytest.approx(0.0, abs=1e-12) and own.seeds == 2
    # Half of 0.55 is 0.275: rung 0.1 (0.35) reaches it, rung 0.01 (0.15) does not.
    assert ls.half_rung(lad) == 0.1
    s = ls.summary(lad)
    de, fr, avg = s["others"]["de"], s["others"]["fr"], s["others_avg"]
    # de: -0.04 and +0.04 -> mean 0; sd at the rung sd2(.46,.44), at full sd2(.5,.4): within the noise.
    assert de["change"].value == pytest.approx(0.0, abs=1e-12) and de["exceeds"] is False
    assert de["change"].sd == pytest.approx(sd2(-0.04, 0.04))
    # fr: +0.10 in both seeds; 0.10 > sd2(.40,.42) + sd2(.30,.32) = 0.028: beyond the noise.
    assert fr["change"].value == pytest.approx(0.10) and fr["exceeds"] is True and fr["rung"] == 0.01
    # The others' average: full (0.40, 0.36), rung (0.43, 0.43): +0.05 > 0 + sd2(.40,.36) = 0.028.
    assert avg["change"].value == pytest.approx(0.05) and avg["exceeds"] is True
    # Cross-language slope over el, de, fr (shares 0.1, 0.3, 0.6) per seed, by the formula.
    x = [math.log10(v) for v in (0.1, 0.3, 0.6)]
    xm = sum(x) / 3

    def slope(y):
        ym = sum(y) / 3
        return sum((a - xm) * (b - ym) for a, b in zip(x, y)) / sum((a - xm) ** 2 for a in x)

    s1, s2 = slope([0.60, 0.50, 0.30]), slope([0.50, 0.40, 0.32])
    assert s["cross_slope"].value == pytest.approx((s1 + s2) / 2) and s["cross_slope"].sd == pytest.approx(sd2(s1, s2))
    assert s["own_over_cross"] == pytest.approx(0.2 / ((s1 + s2) / 2))


def test_markdown_section_and_undecided_single_seed():
    md = ladder.ladder_section(ladder.LadderStats(RESULTS, min_heldout=100))
    lines = md.splitlines()
    assert lines[0] == "## Share ladder: a language's own data, everything else held"
    header = next(l for l in lines if l.startswith("| setting | alpha | seeds"))
    assert header == (
        "| setting | alpha | seeds | 1 (1000 pairs) | 0.1 (100 pairs) | 0.01 (10 pairs) | own slope / 10x pairs "
        "| half rung | cross slope / 10x share | own / cross |"
    )
    row = next(l for l in lines if l.startswith("| weam | 1 | 2 |"))
    assert row.startswith("| weam | 1 | 2 | 55.0 ± 7.1 | 35.0 ± 7.1 | 15.0 ± 7.1 | +20.0 ± 0.0 | 0.1 |")
    effect = next(l for l in lines if l.startswith("| weam | 1 | 0.01 |"))
    assert effect == "| weam | 1 | 0.01 | +0.0 ± 5.7 | **+10.0 ± 0.0** | **+5.0 ± 2.8** |"
    # One seed without per-pair hits: no spread, and the noise rule cannot decide.
    one = ladder.LadderStats(RESULTS[:3], min_heldout=100)
    single = next(l for l in ladder.ladder_section(one).splitlines() if l.startswith("| weam | 1 | 0.01 |"))
    assert single == "| weam | 1 | 0.01 | -4.0? | +10.0? | +3.0? |"
    assert one.summary(one.ladders[0])["own_slope"].value == pytest.approx(0.2)
    # Runs without ladder rungs: no section.
    assert ladder.ladder_section(ladder.LadderStats([RESULTS[0], RESULTS[3]], min_heldout=100)) == ""


def test_ladder_axis_of_the_sweep():
    assert ladder_sweep.parse_ladder("el:0.1,1,0.3") == ("el", [1.0, 0.3, 0.1])
    assert ladder_sweep.parse_ladder("de:0.1") == ("de", [1.0, 0.1])  # rung 1 is always there
    for bad, message in [
        ("el", "expected LANG:F1"),
        ("en-el:0.1", "expected LANG:F1"),
        ("el:0,0.1", r"in \(0, 1\]"),
        ("el:x", "numbers"),
        ("el:0.1,0.1", "twice"),
    ]:
        with pytest.raises(ladder_sweep.LadderError, match=message):
            ladder_sweep.parse_ladder(bad)
    with pytest.raises(ladder_sweep.LadderError, match="laddered twice"):
        ladder_sweep.parse_ladders(["el:0.1", "el:0.3"])
    grid = sweep.make_grid(["weam"], [1.0, 0.3], seeds=[1, 2])
    full = ladder_sweep.add_rungs(grid, ladder_sweep.parse_ladders(["el:1,0.1", "de:0.3,0.03"]))
    assert [g.name for g in full[:5]] == [
        "weam_a1_s1",
        "weam_a1_s1_el0.1",
        "weam_a1_s1_de0.3",
        "weam_a1_s1_de0.03",
        "weam_a0.3_s1",
    ]
    assert len(full) == 4 * 4  # rung 1 is the grid point itself: never trained twice
    assert len({g.name for g in full}) == len(full)
    assert full[1].args[-4:] == ["--sampling-alpha", "1", "--subsample", "el:0.1"] and full[1].subsample == {"el": 0.1}
    assert full[1].seed == 1 and grid[0].subsample == {}
    sizes = {"de": 30865, "el": 9599}
    assert ladder_sweep.subsampled_sizes(sizes, {"el": 0.03}) == {"de": 30865, "el": 288}
    with pytest.raises(ladder_sweep.LadderError, match="no training pairs for"):
        ladder_sweep.subsampled_sizes(sizes, {"xx": 0.1})


def test_two_rung_ladder_sweep_end_to_end(tmp_path, capsys):
    """Real fairseq-train runs on prepared data: rung 1 and rung 0.5 of bb; results.md holds the
    ladder table, the rung run trained on the kept half of bb and the main tables leave it out."""
    import json
    import shlex

    from eval_fixtures import TEST_MODEL_ARGS, shared_pretrained

    from fairseq_weam.cli import sweep as cli

    data, heldout, _, _ = shared_pretrained()
    out = tmp_path / "ladder"
    argv = ["--data", data, "--heldout", heldout, "--out", str(out), "--settings", "weam", "--alphas", "1"]
    argv += ["--ladder", "bb:1,0.5", "--min-heldout", "20", "--model-args", shlex.join(TEST_MODEL_ARGS), "--k", "3"]
    results = cli.run(argv + ["--extra-train-args", "--max-update 6 --warmup-updates 3"])
    capsys.readouterr()
    assert [r["name"] for r in results] == ["weam_a1_s1", "weam_a1_s1_bb0.5"]
    assert results[1]["subsample"] == {"bb": 0.5} and results[0]["subsample"] == {}
    assert results[1]["data"]["bb"]["train_pairs"] == 30 and results[1]["data"]["aa"]["train_pairs"] == 160
    log = (out / "runs" / "weam_a1_s1_bb0.5" / "train.log").read_text()
    assert "--subsample bb:0.5" in log.splitlines()[0] and "en-bb: 30 of 60 training pairs kept" in log
    md = (out / "results.md").read_text()
    section = md[md.index("## Share ladder") :].splitlines()
    assert "| setting | alpha | seeds | 1 (60 pairs) | 0.5 (30 pairs) | own slope / 10x pairs | half rung" in "\n".join(
        section
    )
    bb = [100 * r["retrieval"]["bb"]["margin"]["mean"] for r in results]
    row = next(l for l in section if l.startswith("| weam | 1 | 1 |"))
    assert row.startswith(f"| weam | 1 | 1 | {bb[0]:.1f} [") and f"| {bb[1]:.1f} [" in row  # one seed: bootstrap
    # The main accuracy table has the full-data run only.
    main = md[md.index("## Accuracy per language") : md.index("## Per direction")]
    assert len([l for l in main.splitlines() if l.startswith("| weam |")]) == 1
    saved = json.loads((out / "ladder.json").read_text())
    assert [r["pairs"] for r in saved["ladders"][0]["rungs"]] == [60, 30]
    assert (out / "ladder.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_ladder_dry_run_and_bad_value(capsys, tmp_path, monkeypatch):
    from fairseq_weam.cli import sweep as cli

    monkeypatch.chdir(tmp_path)
    os.mkdir("D"), os.mkdir("H")  # --data and --heldout are checked to exist, even for a dry run

    argv = ["--data", "D", "--heldout", "H", "--out", "O", "--settings", "weam", "--alphas", "1", "--dry-run"]
    assert cli.run(argv + ["--ladder", "el:1,0.1", "--ladder", "de:0.3"]) == []
    lines = capsys.readouterr().out.strip().splitlines()
    assert [l.split("--save-dir O/runs/")[1].split("/")[0] for l in lines] == [
        "weam_a1_s1",
        "weam_a1_s1_el0.1",
        "weam_a1_s1_de0.3",
    ]
    assert "--subsample" not in lines[0] and lines[1].endswith(
        "--subsample el:0.1 --seed 1 --save-dir O/runs/weam_a1_s1_el0.1/checkpoints --cpu"
    )
    assert cli.main(argv + ["--ladder", "el:0.1,2"]) == 2  # one usage line, exit 2
    assert "--ladder 'el:0.1,2': every rung must be in (0, 1]" in capsys.readouterr().err
