"""The sweep's continued regime (``--base-updates N`` / ``--base CKPT``) with the real fairseq-train
on the tiny fixture: the base is trained once per seed and reused, a continued run starts from it
(loaded, with a far lower first loss than from random weights) and resumes from its own checkpoint
after an interruption, λ settings parse, and a bad ``--base`` stops before anything trains."""

import os
import re
import shlex
import shutil

import pytest
import torch
from eval_fixtures import TEST_MODEL_ARGS, shared_pretrained

from fairseq_weam.cli import sweep as cli
from fairseq_weam.core.errors import OptionError
from fairseq_weam.evaluation import sweep, sweep_base

SHORT = "--max-update 6 --warmup-updates 3"


def argv(data, heldout, out, *extra):
    return [
        "--data",
        data,
        "--heldout",
        heldout,
        "--out",
        str(out),
        "--settings",
        "weam",
        "--alphas",
        "1",
        "--min-heldout",
        "20",
        "--model-args",
        shlex.join(TEST_MODEL_ARGS),
        "--extra-train-args",
        SHORT,
        "--k",
        "3",
        *extra,
    ]


def train_losses(log: str) -> list:
    """The masked-LM losses (bits) fairseq logged in ``log`` (after its last command line)."""
    return [float(x) for x in re.findall(r"\bml_loss[ =]([0-9.]+)", log.rsplit("\n# ", 1)[-1])]


def test_lambda_settings_and_scratch_controls():
    assert sweep.setting_args("weam@0.5") == ["--bitext-objective", "weam", "--xl-lambda", "0.5"]
    assert sweep.setting_args("weam+ctr@2") == sweep.SETTINGS["weam+ctr"][:3] + ["2"] + sweep.SETTINGS["weam+ctr"][4:]
    grid = sweep.make_grid(["weam@0.5", "weam+ctr@2"], [1.0])
    assert [(g.name, g.setting) for g in grid] == [("weam@0.5_a1_s1", "weam@0.5"), ("weam+ctr@2_a1_s1", "weam+ctr@2")]
    for bad, why in (
        ("tlm@2", "word-exchange"),
        ("weam@x", "not a number"),
        ("nope@1", "unknown"),
        ("nope", "unknown"),
    ):
        with pytest.raises(OptionError, match=why):
            sweep.setting_args(bad)
    (s,) = sweep.scratch_grid(["weam"], 1.0, 2300, seeds=[2])
    assert (s.name, s.setting, s.restore, sweep.max_update(s.args)) == (
        "scratch-weam_a1_s2",
        "scratch-weam",
        None,
        2300,
    )
    assert sweep.max_update(["--max-update", "1000", "--lr", "1", "--max-update", "300"]) == 300


def test_a_continued_run_restores_the_base_only_on_its_first_launch(tmp_path):
    spec = sweep_base.continue_from(sweep.make_grid(["weam"], [1.0]), lambda seed: f"/b{seed}.pt")[0]
    cmd = sweep.train_command(spec, "DATA", str(tmp_path), TEST_MODEL_ARGS, [])
    at = cmd.index("--restore-file")
    assert cmd[at : at + 6] == ["--restore-file", "/b1.pt", *sweep_base.RESET_FLAGS]
    os.makedirs(tmp_path / "checkpoints")
    (tmp_path / "checkpoints" / "checkpoint_last.pt").write_bytes(b"")
    cmd = sweep.train_command(spec, "DATA", str(tmp_path), TEST_MODEL_ARGS, [])
    assert "--restore-file" not in cmd and not set(sweep_base.RESET_FLAGS) & set(cmd)


def test_base_trained_once_continued_from_and_resumed(tmp_path, capsys):
    data, heldout, _, _ = shared_pretrained()
    out = tmp_path / "sweep"
    base_args = ["--base-updates", "100"]
    results = cli.run(argv(data, heldout, out, "--seeds", "1", *base_args))
    assert [(r["name"], r["setting"]) for r in results] == [("base_s1", "base"), ("weam_a1_s1", "weam")]
    base_ckpt = str(out / "base_s1" / "checkpoints" / "checkpoint_last.pt")
    base_log = (out / "base_s1" / "train.log").read_text()
    assert "--bitext-objective mlm" in base_log.splitlines()[0] and "--max-update 100" in base_log.splitlines()[0]
    assert "num_updates 100" in base_log
    # The continued run: the base's weights, fresh optimizer / schedule / meters / data loader.
    run_log = (out / "runs" / "weam_a1_s1" / "train.log").read_text()
    command = run_log.splitlines()[0]
    assert f"--restore-file {base_ckpt} " + " ".join(sweep_base.RESET_FLAGS) in command
    assert f"Loaded checkpoint {base_ckpt} (epoch " in run_log and "@ 0 updates)" in run_log
    assert results[1]["restore"] == base_ckpt and "num_updates 6" in run_log
    md = (out / "results.md").read_text()
    assert "| base | 0.7 | 1 |" in md and "## Change against the base" in md

    # The continued run starts where the base ended; the same 6 updates from random weights start
    # near log2(154 types) = 7.27 bits, far higher (the fixture's synthetic text stops the base
    # near 6.4 bits after 100 updates).
    scratch = cli.run(argv(data, heldout, tmp_path / "scratch", "--seeds", "1"))
    scratch_log = (tmp_path / "scratch" / "runs" / "weam_a1_s1" / "train.log").read_text()
    assert "--restore-file" not in scratch_log and scratch[0]["restore"] is None
    first, base_last, scratch_first = train_losses(run_log)[0], train_losses(base_log)[-1], train_losses(scratch_log)[0]
    assert abs(first - base_last) < 0.3 and first < scratch_first - 0.5 and scratch_first > 7.0, (
        first,
        base_last,
        scratch_first,
    )

    # A rerun and an added seed reuse the base of seed 1: its log is untouched, one training in it.
    stamp = (out / "base_s1" / "train.log").stat().st_mtime_ns
    cli.run(argv(data, heldout, out, "--seeds", "1", *base_args))
    results = cli.run(argv(data, heldout, out, "--seeds", "1,2", *base_args))
    assert [r["name"] for r in results] == ["base_s1", "base_s2", "weam_a1_s1", "weam_a1_s2"]
    assert (out / "base_s1" / "train.log").stat().st_mtime_ns == stamp
    assert (out / "base_s1" / "train.log").read_text().count("\n# ") == 0  # one command line: trained once
    assert (out / "base_s2" / "train.log").read_text().count("--seed 2") == 1
    assert results[3]["restore"] == str(out / "base_s2" / "checkpoints" / "checkpoint_last.pt")
    # Another base budget in the same directory is refused, not silently reused.
    with pytest.raises(sweep.SweepError, match="base_s1/result.json: trained with"):
        cli.run(argv(data, heldout, out, "--seeds", "1", "--base-updates", "50"))

    # Interrupted after its last checkpoint (no result.json): the run resumes from its own
    # checkpoint_last.pt, not from the base again.
    os.remove(out / "runs" / "weam_a1_s1" / "result.json")
    cli.run(argv(data, heldout, out, "--seeds", "1", *base_args))
    resumed = (out / "runs" / "weam_a1_s1" / "train.log").read_text().split("\n# ")
    assert len(resumed) == 2 and "--restore-file" not in resumed[1].splitlines()[0]
    own = str(out / "runs" / "weam_a1_s1" / "checkpoints" / "checkpoint_last.pt")
    assert f"Loaded checkpoint {own} (epoch 1 @ 6 updates)" in resumed[1] and base_ckpt not in resumed[1]
    capsys.readouterr()


def test_given_base_is_evaluated_and_continued(tmp_path, capsys):
    data, heldout, _, ckpt = shared_pretrained()
    out = tmp_path / "sweep"
    results = cli.run(argv(data, heldout, out, "--seeds", "1,2", "--base", ckpt))
    assert [r["name"] for r in results] == ["base_s1", "base_s2", "weam_a1_s1", "weam_a1_s2"]
    assert results[0]["retrieval"] == results[1]["retrieval"] and results[0]["checkpoint"] == os.path.abspath(ckpt)
    log = (out / "runs" / "weam_a1_s2" / "train.log").read_text()
    assert f"--restore-file {os.path.abspath(ckpt)} --reset-optimizer" in log.splitlines()[0]
    assert f"Loaded checkpoint {os.path.abspath(ckpt)} (epoch " in log
    capsys.readouterr()


class Exploit:
    """Pickles to a call of os.system, as a crafted checkpoint would."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _another_vocabulary(ckpt, data, tmp):
    other = os.path.join(tmp, "other-data")
    shutil.copytree(data, other)
    with open(os.path.join(other, "dict.txt"), "a") as f:
        f.writelines(f"extra{i} 1\n" for i in range(20))
    return ckpt, other, f"{ckpt}: the checkpoint's vocabulary (154 types) does not match {other}/dict.txt (174 types)"


def _truncated(ckpt, data, tmp):
    cut = os.path.join(tmp, "cut.pt")
    with open(ckpt, "rb") as f, open(cut, "wb") as g:
        g.write(f.read(100_000))
    return cut, data, f"{cut}: truncated or corrupted checkpoint ("


def _malicious(ckpt, data, tmp):
    evil = os.path.join(tmp, "evil.pt")
    torch.save({"model": Exploit(os.path.join(tmp, "EXECUTED"))}, evil)
    return evil, data, f"{evil}: "


@pytest.mark.parametrize("make", [_another_vocabulary, _truncated, _malicious])
def test_bad_base_is_one_error_line_and_nothing_trains(make, tmp_path, capsys):
    data, heldout, _, ckpt = shared_pretrained()
    base, data, expected = make(ckpt, data, str(tmp_path))
    out = tmp_path / "sweep"
    status = cli.main(argv(data, heldout, out, "--base", base))
    err = capsys.readouterr().err
    lines = [l for l in err.splitlines() if l.startswith("fairseq-weam-sweep: error: ")]
    assert status == 2 and len(lines) == 1 and "Traceback" not in err, err[-3000:]
    assert lines[0].startswith(f"fairseq-weam-sweep: error: {expected}"), lines[0]
    assert not out.exists()  # nothing trained, nothing written
    assert not (tmp_path / "EXECUTED").exists()  # nothing executed
