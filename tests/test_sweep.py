"""The imbalance sweep on a 2-alpha x 2-seed grid with a tiny model: real fairseq-train runs,
retrieval per language, the summary, tables and figure; finished runs are cached per seed and
unfinished ones redone."""

import json
import os
import shlex

import numpy as np
import pytest
from eval_fixtures import TEST_MODEL_ARGS, USER_DIR, shared_pretrained

from fairseq_weam.cli import sweep as cli
from fairseq_weam.core.errors import OptionError
from fairseq_weam.evaluation import sweep, sweep_study


def test_sampling_shares():
    q = sweep.sampling_shares({"fr": 900, "sw": 100}, 1.0)
    assert q == pytest.approx({"fr": 0.9, "sw": 0.1})
    q = sweep.sampling_shares({"fr": 900, "sw": 100}, 0.5)  # 3:1 after the square root
    assert q == pytest.approx({"fr": 0.75, "sw": 0.25})
    assert sweep.sampling_shares({"a": 5, "b": 1, "c": 50}, 0.0) == pytest.approx({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3})


def test_grid_names_and_args():
    grid = sweep.make_grid(["weam", "tlm"], [1.0, 0.3])
    assert [g.name for g in grid] == ["weam_a1_s1", "weam_a0.3_s1", "tlm_a1_s1", "tlm_a0.3_s1"]
    assert grid[1].args[-2:] == ["--sampling-alpha", "0.3"]
    # Seed by seed: a whole grid of seed 1 before any run of seed 2.
    grid = sweep.make_grid(["weam", "tlm"], [1.0], seeds=[1, 2])
    assert [(g.name, g.seed) for g in grid] == [
        ("weam_a1_s1", 1),
        ("tlm_a1_s1", 1),
        ("weam_a1_s2", 2),
        ("tlm_a1_s2", 2),
    ]
    with pytest.raises(OptionError, match="nope"):
        sweep.make_grid(["nope"], [1.0])
    with pytest.raises(ValueError, match="distinct"):
        sweep.make_grid(["weam"], [1.0], seeds=[1, 1])
    table = cli.parse_settings(["weam=--xl-lambda 0.5", "x=--contrastive-weight 2"])
    assert table["weam"] == ["--xl-lambda", "0.5"] and table["x"] == ["--contrastive-weight", "2"]
    assert table["tlm"] == sweep.SETTINGS["tlm"]


@pytest.mark.parametrize("setting", list(sweep.SETTINGS))
def test_every_setting_parses_with_fairseq(setting, tmp_path):
    """Each table entry must be accepted by the real fairseq-train parser with the plugin."""
    from fairseq import options

    spec = sweep.make_grid([setting], [0.3])[0]
    cmd = sweep.train_command(spec, "DATA", str(tmp_path), sweep.TINY_MODEL_ARGS, sweep.DEMO_TRAIN_ARGS)
    parser = options.get_training_parser()
    args = options.parse_args_and_arch(parser, cmd[1:])
    assert args.task == "weam" and args.criterion == "weam" and args.sampling_alpha == 0.3
    expected = {
        "mlm": ("mlm", 0.0, 0.0, 0.0),
        "tlm": ("tlm", 0.0, 0.0, 0.0),
        "weam": ("weam", 1.0, 0.0, 0.0),
        "weam+ctr": ("weam", 1.0, 1.0, 0.0),
        "tlm+ctr": ("tlm", 0.0, 1.0, 0.0),
        "weam+wctr": ("weam", 1.0, 0.0, 1.0),
        "tlm+xlco": ("tlm", 0.0, 1.0, 0.0),
        "weam+xlco": ("weam", 1.0, 1.0, 0.0),
    }[setting]
    assert (args.bitext_objective, args.xl_lambda, args.contrastive_weight, args.word_contrastive_weight) == expected


def test_two_seed_sweep_summary_figure_and_cache(tmp_path, capsys):
    data, heldout, _, _ = shared_pretrained()
    out = tmp_path / "sweep"
    argv = [
        "--data",
        data,
        "--heldout",
        heldout,
        "--out",
        str(out),
        "--settings",
        "weam",
        "--alphas",
        "1,0.3",
        "--seeds",
        "1,2",
        "--min-heldout",
        "20",
        "--model-args",
        shlex.join(TEST_MODEL_ARGS),
        "--extra-train-args",
        "--max-update 6 --warmup-updates 3",
        "--k",
        "3",
    ]
    results = cli.run(argv)
    assert [r["name"] for r in results] == ["weam_a1_s1", "weam_a0.3_s1", "weam_a1_s2", "weam_a0.3_s2"]
    for r in results:
        assert set(r["retrieval"]) == {"aa", "bb"}
        assert all(
            0 <= r["retrieval"][l][m][d] <= 1
            for l in ("aa", "bb")
            for m in ("cosine", "margin")
            for d in ("src2tgt", "tgt2src")
        )
        assert len(r["retrieval"]["aa"]["correct"]["margin"]["src2tgt"]) == 20  # per-pair hits kept
        assert r["data"]["aa"]["train_pairs"] == 160 and r["data"]["bb"]["train_pairs"] == 60
        assert os.path.exists(r["checkpoint"]) and r["eval"]["layer_index"] == 1
        # Each run trained with its own seed and alpha.
        first = (out / "runs" / r["name"] / "train.log").read_text().splitlines()[0]
        assert f"--sampling-alpha {r['alpha']:g}" in first and f"--seed {r['seed']}" in first
    assert results[1]["data"]["bb"]["sampled_share"] > results[0]["data"]["bb"]["share"]
    # Different seeds give different models.
    assert (
        results[0]["retrieval"]["aa"]["correct"] != results[2]["retrieval"]["aa"]["correct"]
        or results[0]["retrieval"]["bb"]["correct"] != results[2]["retrieval"]["bb"]["correct"]
    )

    md = (out / "results.md").read_text()
    assert md.startswith("# Imbalance sweep: sentence retrieval per language\n\n## Summary\n")
    table = md[md.index("## Accuracy per language") :].splitlines()
    header = next(l for l in table if l.startswith("| setting"))
    assert header == "| setting | alpha | seeds | aa (73%) | bb (27%) | avg |"
    row = next(l for l in table if l.startswith("| weam | 0.3 |"))
    per_seed = np.array([[100 * sweep_study.accuracy(r, l) for l in ("aa", "bb")] for r in results[1::2]])
    expected = [f"{m:.1f} ± {s:.1f}" for m, s in zip(per_seed.mean(0), per_seed.std(0, ddof=1))]
    avg = per_seed.mean(1)
    assert row == f"| weam | 0.3 | 2 | {expected[0]} | {expected[1]} | {avg.mean():.1f} ± {avg.std(ddof=1):.1f} |"
    assert "2 runs" not in md and "4 runs: 1 settings x 2 alphas x seeds 1, 2" in md
    png = (out / "retrieval_vs_share.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10000
    assert (out / "retrieval_vs_share.pdf").read_bytes()[:5] == b"%PDF-"
    saved = json.loads((out / "results.json").read_text())
    assert [c["seeds"] for c in saved["cells"]] == [[1, 2], [1, 2]] and saved["runs"][0]["name"] == "weam_a1_s1"
    assert saved["cells"][1]["average"]["macro"]["value"] == pytest.approx(avg.mean() / 100)
    assert json.loads((out / "sweep.json").read_text())["seeds"] == [1, 2]
    capsys.readouterr()

    # Rerun: every result is cached, nothing trains (the logs are untouched).
    logs = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/train.log")}
    assert len(logs) == 4
    again = cli.run(argv)
    assert [r["retrieval"] for r in again] == [r["retrieval"] for r in results]
    assert {p: p.stat().st_mtime_ns for p in out.glob("runs/*/train.log")} == logs

    # An interrupted run of seed 2 (checkpoint but no result.json) is resumed and evaluated
    # again; the other runs, seed 1 of the same grid point included, are not touched.
    os.remove(out / "runs" / "weam_a0.3_s2" / "result.json")
    redone = cli.run(argv)
    assert (out / "runs" / "weam_a0.3_s2" / "result.json").exists()
    assert redone[3]["retrieval"] == results[3]["retrieval"]  # same checkpoint, same scores
    for name in ("weam_a1_s1", "weam_a0.3_s1", "weam_a1_s2"):
        path = out / "runs" / name / "train.log"
        assert path.stat().st_mtime_ns == logs[path]

    # --bli added to the finished sweep: the saved checkpoints are scored, nothing trains.
    lex = tmp_path / "lexicons"
    lex.mkdir()
    words = sorted(
        {w for line in open(os.path.join(heldout, os.listdir(heldout)[0]), encoding="utf-8") for w in line.split()}
    )[:12]
    (lex / "aa-bb.txt").write_text("".join(f"{w} {w}\n" for w in words), encoding="utf-8")
    before = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/train.log")}
    with_bli = cli.run(argv + ["--bli", str(lex)])
    for r in with_bli:
        scores = r["bli"]["aa-bb"]["vectors"]["isolated"]["src2tgt"]["csls"]
        assert 0 <= scores["p@1"] <= scores["p@5"] <= 100
    assert "## Word translation (BLI)" in (out / "results.md").read_text()
    assert {p: p.stat().st_mtime_ns for p in out.glob("runs/*/train.log")} == before


def test_failed_training_is_reported_and_not_cached(tmp_path):
    data, heldout, _, _ = shared_pretrained()
    out = tmp_path / "bad"
    with pytest.raises(RuntimeError, match="fairseq-train failed"):
        cli.run(
            [
                "--data",
                data,
                "--heldout",
                heldout,
                "--out",
                str(out),
                "--settings",
                "broken",
                "--alphas",
                "1",
                "--setting",
                "broken=--no-such-flag",
                "--model-args",
                shlex.join(TEST_MODEL_ARGS),
            ]
        )
    assert not (out / "runs" / "broken_a1_s1" / "result.json").exists()


def test_dry_run_prints_one_command_per_grid_point(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # --data D and --heldout H must exist, even for a dry run
    os.mkdir("D"), os.mkdir("H")
    assert (
        cli.run(
            [
                "--data",
                "D",
                "--heldout",
                "H",
                "--out",
                "O",
                "--settings",
                "mlm,weam+ctr",
                "--alphas",
                "0.7",
                "--dry-run",
            ]
        )
        == []
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    assert "--bitext-objective mlm" in lines[0] and "--save-dir O/runs/mlm_a0.7_s1/checkpoints" in lines[0]
    assert "--contrastive-weight 1.0 --sampling-alpha 0.7" in lines[1] and f"--user-dir {USER_DIR}" in lines[1]
    assert (
        cli.run(
            [
                "--data",
                "D",
                "--heldout",
                "H",
                "--out",
                "O",
                "--settings",
                "weam+ctr,tlm+ctr",
                "--alphas",
                "1",
                "--seeds",
                "1,2",
                "--dry-run",
            ]
        )
        == []
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert [l.split("--save-dir O/runs/")[1].split("/")[0] for l in lines] == [
        "weam+ctr_a1_s1",
        "tlm+ctr_a1_s1",
        "weam+ctr_a1_s2",
        "tlm+ctr_a1_s2",
    ]
    assert ["--seed 1" in l for l in lines] == [True, True, False, False] and "--seed 2" in lines[3]


def test_console_entry_point_exit_status(capsys, tmp_path):
    data, heldout = tmp_path / "D", tmp_path / "H"
    data.mkdir(), heldout.mkdir()
    D, H, O = str(data), str(heldout), str(tmp_path / "O")
    assert cli.main(["--data", D, "--heldout", H, "--out", O, "--settings", "weam", "--alphas", "1", "--dry-run"]) == 0
    assert cli.main(["--data", "/nonexistent", "--heldout", H, "--out", str(tmp_path / "o"), "--settings", "weam"]) == 2
    assert "fairseq-weam-sweep: error:" in capsys.readouterr().err
    assert cli.main(["--data", D, "--heldout", H, "--out", O, "--seeds", "1,x", "--dry-run"]) == 2
    assert "--seeds: expected comma-separated integers, got '1,x'" in capsys.readouterr().err
