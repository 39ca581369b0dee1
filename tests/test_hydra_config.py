"""The shipped hydra configs drive the real fairseq-hydra-train."""

import os
import subprocess

from e2e import BIN, REPO, USER_DIR, json_records, train_env
from synthetic_corpus import build_raw, preprocess


def test_fairseq_hydra_train_with_shipped_yaml(tmp_path):
    build_raw(tmp_path / "raw", n_train=60, n_valid=10)
    preprocess(tmp_path / "raw", tmp_path / "bin")
    cmd = [
        os.path.join(BIN, "fairseq-hydra-train"),
        "--config-dir",
        os.path.join(REPO, "fairseq_weam", "config", "pretraining"),
        "--config-name",
        "weam_tiny",
        f"task.data={tmp_path / 'bin'}",
        f"common.user_dir={USER_DIR}",
        f"checkpoint.save_dir={tmp_path / 'ckpt'}",
        "common.log_format=json",
        "common.log_interval=2",
        "optimization.max_update=6",
        "dataset.batch_size=8",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=train_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "ckpt" / "checkpoint_last.pt").exists()
    log = proc.stdout + proc.stderr
    assert "'_name': 'weam'" in log
    # hydra's log lines look like "[date][train_inner][INFO] - {json}"
    records = [r for r in json_records(log.replace("][", " | ").replace("] - ", " | ").replace("[", ""))]
    assert any("xl_loss" in r for r in records)


def test_xlmr_config_runs_with_a_tiny_model(tmp_path):
    """The XLM-R continuation config as shipped (chunked 250k-vocab head, paper settings), with
    the model shrunk and fp16 off so it runs here; no XLM-R weights are needed for that."""
    build_raw(tmp_path / "raw", n_train=60, n_valid=10)
    preprocess(tmp_path / "raw", tmp_path / "bin")
    cmd = [
        os.path.join(BIN, "fairseq-hydra-train"),
        "--config-dir",
        os.path.join(REPO, "fairseq_weam", "config", "pretraining"),
        "--config-name",
        "xlmr_base_continue",
        f"task.data={tmp_path / 'bin'}",
        f"common.user_dir={USER_DIR}",
        f"checkpoint.save_dir={tmp_path / 'ckpt'}",
        "checkpoint.restore_file=checkpoint_last.pt",
        "common.fp16=false",
        "common.cpu=true",
        "dataset.num_workers=0",
        "dataset.batch_size=4",
        "+model.encoder_layers=1",
        "+model.encoder_embed_dim=32",
        "+model.encoder_ffn_embed_dim=64",
        "+model.encoder_attention_heads=2",
        "optimization.max_update=2",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=train_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert "'vocab_chunk_size': 4096" in log and '"train_xl_loss"' in log


def test_the_wheel_ships_the_hydra_configs_and_trains_from_outside_the_checkout(tmp_path):
    """Build the wheel, install it (without dependencies: they are this venv's) into a fresh
    directory, and run fairseq-hydra-train with the packaged config from a directory that has no
    checkout in sight."""
    import sys
    import zipfile

    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), REPO],
        check=True,
        capture_output=True,
        text=True,
    )
    (wheel,) = wheels.glob("fairseq_weam-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "fairseq_weam/config/pretraining/weam_tiny.yaml" in names
    assert "fairseq_weam/config/pretraining/xlmr_base_continue.yaml" in names
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
        text=True,
    )
    env = dict(train_env(), PYTHONPATH=str(site))
    run_dir = tmp_path / "elsewhere"
    run_dir.mkdir()
    where = subprocess.run(
        [sys.executable, "-m", "fairseq_weam.cli.user_dir", "--config-dir"],
        cwd=run_dir,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert where == str(site / "fairseq_weam" / "config" / "pretraining")
    build_raw(tmp_path / "raw", n_train=60, n_valid=10)
    preprocess(tmp_path / "raw", tmp_path / "bin")
    cmd = [
        os.path.join(BIN, "fairseq-hydra-train"),
        "--config-dir",
        where,
        "--config-name",
        "weam_tiny",
        f"task.data={tmp_path / 'bin'}",
        f"common.user_dir={site / 'fairseq_weam'}",
        f"checkpoint.save_dir={tmp_path / 'ckpt'}",
        "optimization.max_update=4",
        "dataset.batch_size=8",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=run_dir, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "ckpt" / "checkpoint_last.pt").exists()
