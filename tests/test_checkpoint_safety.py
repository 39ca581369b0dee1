"""Checkpoints load with torch's weights_only safety: genuine ones load, crafted ones are refused."""

import argparse
import io
import os

import numpy as np
import pytest
import torch
from e2e import fairseq_train
from fairseq import checkpoint_utils
from omegaconf import OmegaConf
from synthetic_corpus import build_raw, preprocess

import fairseq_weam  # noqa: F401  (installs the allow-list and the guarded loader)
from fairseq_weam.core.checkpoint_safety import CheckpointError


class Exploit:
    """Pickles to a call of os.system, as a crafted checkpoint would."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def genuine(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt_safety")
    build_raw(root / "raw", n_train=40, n_valid=8)
    preprocess(root / "raw", root / "bin")
    fairseq_train(root / "bin", root / "ckpt", "--disable-validation", max_update=2)
    return root / "bin", root / "ckpt" / "checkpoint_last.pt"


def test_genuine_checkpoint_loads_with_weights_only(genuine):
    _, path = genuine
    state = checkpoint_utils.load_checkpoint_to_cpu(str(path))
    assert state["cfg"].task._name == "weam"
    assert any(k.endswith("lm_head.weight") for k in state["model"])
    # The loader did not fall back to trusting pickles.
    assert "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD" not in os.environ


def test_release_style_objects_are_allow_listed():
    # RoBERTa / XLM-R releases hold argparse.Namespace; fairseq 0.10 checkpoints omegaconf.
    obj = {
        "args": argparse.Namespace(arch="roberta_base", lr=[0.0005]),
        "cfg": OmegaConf.create({"task": {"_name": "masked_lm", "sample_break_mode": "complete"}, "x": [1, 2.5, None]}),
        "best": np.float64(1.25),
        "n": np.int64(3),
        "w": torch.ones(2),
    }
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    out = torch.load(buf)  # weights_only=True is torch's default
    assert out["args"].arch == "roberta_base" and out["cfg"].task._name == "masked_lm"
    assert out["best"] == 1.25 and out["n"] == 3


def test_crafted_checkpoint_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"model": {}, "payload": Exploit(marker)}, path)
    with pytest.raises(CheckpointError, match=rf"{path}: refused to load"):
        checkpoint_utils.load_checkpoint_to_cpu(str(path))
    assert not marker.exists()


def test_crafted_checkpoint_refused_by_fairseq_train(genuine, tmp_path):
    data, _ = genuine
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"model": {}, "payload": Exploit(marker)}, evil)
    proc, _ = fairseq_train(data, tmp_path / "ckpt", "--restore-file", str(evil), max_update=1, check=False)
    assert proc.returncode != 0
    assert f"fairseq-train: error: {evil}: refused to load" in proc.output  # one line (core/checks.py), no traceback
    assert not marker.exists()


def test_truncated_checkpoint_is_a_clear_error(genuine, tmp_path):
    _, path = genuine
    cut = tmp_path / "cut.pt"
    data = path.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=rf"{cut}: truncated or corrupted"):
        checkpoint_utils.load_checkpoint_to_cpu(str(cut))
