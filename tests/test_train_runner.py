"""The one fairseq-train runner (train_runner.py): command line, streamed + tee'd output, errors,
and the one definition of the tiny model that the packaged hydra config must equal."""

import io
import os
import sys

import pytest
import yaml

from fairseq_weam import train_runner as tr
from fairseq_weam.core.errors import WeamError

CONFIG = os.path.join(os.path.dirname(tr.__file__), "config", "pretraining", "weam_tiny.yaml")


def test_the_packaged_tiny_config_is_the_tiny_model():
    with open(CONFIG) as f:
        cfg = yaml.safe_load(f)
    model = dict(cfg["model"])
    expected = dict(tr.TINY_MODEL)
    assert model.pop("_name") == expected.pop("arch")
    tokens = expected.pop("tokens_per_sample")
    assert cfg["task"]["tokens_per_sample"] == tokens and model.pop("max_positions") == tokens
    assert model == expected


def test_demo_model_is_the_tiny_model_deeper_and_wider():
    diff = {k: v for k, v in tr.DEMO_MODEL.items() if tr.TINY_MODEL[k] != v}
    assert diff == {"encoder_layers": 4, "encoder_ffn_embed_dim": 512}


def test_flags():
    assert tr.flags({"encoder_layers": 2, "cpu": True, "fp16": False, "seed": None, "lr": 1e-3}) == [
        "--encoder-layers",
        "2",
        "--cpu",
        "--lr",
        "0.001",
    ]
    assert tr.flags(tr.TINY_MODEL)[:4] == ["--arch", "roberta", "--encoder-layers", "2"]


def test_train_command():
    cmd = tr.train_command("DATA", "--max-update", 3, task="masked_lm", criterion="masked_lm")
    assert cmd == [
        os.path.join(os.path.dirname(sys.executable), "fairseq-train"),
        "DATA",
        "--user-dir",
        tr.USER_DIR,
        "--task",
        "masked_lm",
        "--criterion",
        "masked_lm",
        "--max-update",
        "3",
    ]


CHILD = (
    'import sys; print(\'x | INFO | train_inner | {"loss": "3.1", "num_updates": "5"}\'); '
    "print('noise', file=sys.stderr); raise SystemExit(int(sys.argv[1]))"
)


def test_run_streams_progress_and_tees_everything(tmp_path):
    out, log = io.StringIO(), tmp_path / "train.log"
    save = tmp_path / "ckpt"
    save.mkdir()
    (save / "checkpoint_last.pt").write_bytes(b"")
    run = tr.run_train([sys.executable, "-c", CHILD, "0", "--save-dir", str(save)], str(log), stream=out)
    assert run.returncode == 0
    assert out.getvalue() == 'x | INFO | train_inner | {"loss": "3.1", "num_updates": "5"}\n'
    lines = log.read_text().splitlines()
    assert lines[0].startswith("# ") and lines[1:] == [out.getvalue().rstrip(), "noise"]
    assert run.records == [{"loss": "3.1", "num_updates": "5", "_tag": "train_inner"}]
    assert run.checkpoints == [str(save / "checkpoint_last.pt")]
    # append keeps what an interrupted run wrote before
    tr.run_train([sys.executable, "-c", CHILD, "0"], str(log), show=tr.never, append=True)
    assert len(log.read_text().splitlines()) == 6


def test_failure_raises_an_expected_error_with_the_tail(tmp_path):
    log = tmp_path / "train.log"
    with pytest.raises(tr.TrainError) as err:
        tr.run_train([sys.executable, "-c", CHILD, "3"], str(log), show=tr.never, what="weam_a1_s1")
    assert isinstance(err.value, WeamError) and isinstance(err.value, RuntimeError)
    assert str(err.value).startswith(f"weam_a1_s1: fairseq-train failed (exit 3); full log: {log}\n")
    assert str(err.value).endswith("noise\n")
    assert tr.run_train([sys.executable, "-c", CHILD, "3"], show=tr.never, check=False).returncode == 3


def test_timeout_kills_the_run():
    run = tr.run_train([sys.executable, "-c", "import time; time.sleep(30)"], show=tr.never, timeout=1, check=False)
    assert run.returncode == -9


def test_abort_at_shutdown_after_a_finished_run_counts_as_success():
    code = (
        "import os, sys; print('done training'); print('terminate called without an active exception'); "
        "sys.stdout.flush(); os.abort()"
    )
    assert tr.run_train([sys.executable, "-c", code], show=tr.never).returncode == 0
