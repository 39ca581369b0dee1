"""The imbalance sweep on a 2-point grid with a tiny model: real fairseq-train runs, retrieval
per language, the markdown table and the PNG; finished runs are cached and unfinished ones redone."""

import json
import os
import shlex

import numpy as np
import pytest

from eval_fixtures import TINY_MODEL, USER_DIR, shared_pretrained
from fairseq_weam.cli import sweep as cli
from fairseq_weam.evaluation import report, sweep


def test_sampling_shares():
    q = sweep.sampling_shares({"fr": 900, "sw": 100}, 1.0)
    assert q == pytest.approx({"fr": 0.9, "sw": 0.1})
    q = sweep.sampling_shares({"fr": 900, "sw": 100}, 0.5)  # 3:1 after the square root
    assert q == pytest.approx({"fr": 0.75, "sw": 0.25})
    assert sweep.sampling_shares({"a": 5, "b": 1, "c": 50}, 0.0) == pytest.approx({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3})


def test_grid_names_and_args():
    grid = sweep.make_grid(["weam", "tlm"], [1.0, 0.3])
    assert [g.name for g in grid] == ["weam_a1", "weam_a0.3", "tlm_a1", "tlm_a0.3"]
    assert grid[1].args[-2:] == ["--sampling-alpha", "0.3"]
    with pytest.raises(KeyError, match="nope"):
        sweep.make_grid(["nope"], [1.0])
    table = cli.parse_settings(["weam=--xl-lambda 0.5", "x=--contrastive-weight 2"])
    assert table["weam"] == ["--xl-lambda", "0.5"] and table["x"] == ["--contrastive-weight", "2"]
    assert table["tlm"] == sweep.SETTINGS["tlm"]


@pytest.mark.parametrize("setting", list(sweep.SETTINGS))
def test_every_setting_parses_with_fairseq(setting, tmp_path):
    """Each table entry must be accepted by the real fairseq-train parser with the plugin."""
    from fairseq import options

    spec = sweep.make_grid([setting], [0.3])[0]
    cmd = sweep.train_command(spec, "DATA", str(tmp_path), sweep.DEMO_MODEL_ARGS, sweep.DEMO_TRAIN_ARGS)
    parser = options.get_training_parser()
    args = options.parse_args_and_arch(parser, cmd[1:])
    assert args.task == "weam" and args.criterion == "weam" and args.sampling_alpha == 0.3
    expected = {"mlm": ("mlm", 0.0, 0.0), "tlm": ("tlm", 0.0, 0.0), "weam": ("weam", 1.0, 0.0),
                "weam+ctr": ("weam", 1.0, 1.0)}[setting]
    assert (args.bitext_objective, args.xl_lambda, args.contrastive_weight) == expected


def test_two_point_sweep_table_figure_and_cache(tmp_path, capsys):
    data, heldout, _, _ = shared_pretrained()
    out = tmp_path / "sweep"
    argv = ["--data", data, "--heldout", heldout, "--out", str(out), "--settings", "weam", "--alphas", "1,0.3",
            "--model-args", shlex.join(TINY_MODEL), "--extra-train-args", "--max-update 6 --warmup-updates 3",
            "--k", "3"]
    results = cli.run(argv)
    assert [r["name"] for r in results] == ["weam_a1", "weam_a0.3"]
    for r in results:
        assert set(r["retrieval"]) == {"aa", "bb"}
        assert all(0 <= r["retrieval"][l][m][d] <= 1 for l in ("aa", "bb") for m in ("cosine", "margin")
                   for d in ("src2tgt", "tgt2src"))
        assert r["data"]["aa"]["train_pairs"] == 160 and r["data"]["bb"]["train_pairs"] == 60
        assert os.path.exists(r["checkpoint"]) and r["eval"]["layer_index"] == 1
    assert results[1]["data"]["bb"]["sampled_share"] > results[0]["data"]["bb"]["share"]
    # The two runs really trained with different alphas.
    assert "--sampling-alpha 0.3" in (out / "runs" / "weam_a0.3" / "train.log").read_text().splitlines()[0]

    md = (out / "results.md").read_text()
    header = next(l for l in md.splitlines() if l.startswith("| setting"))
    assert header == "| setting | alpha | aa (73%) n=20 | bb (27%) n=20 | avg |"
    row = next(l for l in md.splitlines() if l.startswith("| weam | 0.3 |"))
    accs = [100 * report.accuracy(results[1], l) for l in ("aa", "bb")]
    assert row == f"| weam | 0.3 | {accs[0]:.1f} | {accs[1]:.1f} | {np.mean(accs):.1f} |"
    png = (out / "retrieval_vs_share.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10000
    assert json.loads((out / "results.json").read_text())[0]["name"] == "weam_a1"
    capsys.readouterr()

    # Rerun: both results are cached, nothing trains (the logs are untouched).
    logs = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/train.log")}
    again = cli.run(argv)
    assert [r["retrieval"] for r in again] == [r["retrieval"] for r in results]
    assert {p: p.stat().st_mtime_ns for p in out.glob("runs/*/train.log")} == logs

    # An interrupted run (checkpoint but no result.json) is resumed and evaluated again.
    os.remove(out / "runs" / "weam_a0.3" / "result.json")
    redone = cli.run(argv)
    assert (out / "runs" / "weam_a0.3" / "result.json").exists()
    assert redone[1]["retrieval"] == results[1]["retrieval"]  # same checkpoint, same scores
    assert (out / "runs" / "weam_a1" / "train.log").stat().st_mtime_ns == logs[out / "runs" / "weam_a1" / "train.log"]


def test_failed_training_is_reported_and_not_cached(tmp_path):
    data, heldout, _, _ = shared_pretrained()
    out = tmp_path / "bad"
    with pytest.raises(RuntimeError, match="fairseq-train failed"):
        cli.run(["--data", data, "--heldout", heldout, "--out", str(out), "--settings", "broken", "--alphas", "1",
                  "--setting", "broken=--no-such-flag", "--model-args", shlex.join(TINY_MODEL)])
    assert not (out / "runs" / "broken_a1" / "result.json").exists()


def test_dry_run_prints_one_command_per_grid_point(capsys):
    assert cli.run(["--data", "D", "--heldout", "H", "--out", "O", "--settings", "mlm,weam+ctr",
                     "--alphas", "0.7", "--dry-run"]) == []
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    assert "--bitext-objective mlm" in lines[0] and "--save-dir O/runs/mlm_a0.7/checkpoints" in lines[0]
    assert "--contrastive-weight 1.0 --sampling-alpha 0.7" in lines[1] and f"--user-dir {USER_DIR}" in lines[1]


def test_console_entry_point_exit_status(capsys, tmp_path):
    assert cli.main(["--data", "D", "--heldout", "H", "--out", "O", "--settings", "weam", "--alphas", "1",
                     "--dry-run"]) == 0
    assert cli.main(["--data", "/nonexistent", "--heldout", "H", "--out", str(tmp_path / "o"), "--settings", "weam"]) == 2
    assert "fairseq-weam-sweep: error:" in capsys.readouterr().err
