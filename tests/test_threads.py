"""``--threads``: the CPU threads chosen by the sweep, the demo and train_runner reach the training
subprocess (read back from the run's own log: the criterion logs ``torch.get_num_threads()``)."""

import os
from unittest import mock

import pytest
from e2e import TEST_MODEL_ARGS, train_env
from synthetic_corpus import build_raw, preprocess

from fairseq_weam import train_runner
from fairseq_weam.cli import demo
from fairseq_weam.cli import sweep as sweep_cli
from fairseq_weam.train_runner import default_threads, never, run_train, thread_env, train_command


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("threads")
    build_raw(root / "raw", n_train=60, n_valid=10)
    preprocess(root / "raw", root / "bin")
    return root / "bin"


def test_thread_setting_reaches_the_training_subprocess(data_dir, tmp_path):
    cmd = train_command(
        data_dir,
        *TEST_MODEL_ARGS,
        "--optimizer",
        "adam",
        "--lr",
        "1e-3",
        "--batch-size",
        "16",
        "--max-update",
        "1",
        "--no-save",
        "--cpu",
        "--num-workers",
        "0",
        "--disable-validation",
    )
    env = train_env()
    assert env["OMP_NUM_THREADS"] == "1"  # the caller's setting ...
    log = tmp_path / "train.log"
    run = run_train(cmd, str(log), show=never, env=env, threads=2)  # ... overridden (torch caps it at the cores)
    assert f"torch CPU threads: {min(2, train_runner.available_cores())}" in run.output
    assert open(log).readline().startswith("# OMP_NUM_THREADS=2 ")  # the log says how it was run
    # Without a setting the run inherits the environment's.
    run = run_train(cmd, show=never, env=env)
    assert "torch CPU threads: 1" in run.output


def test_thread_env_and_default():
    env = thread_env(2, {"PATH": "/bin", "OMP_NUM_THREADS": "7"})
    assert env == {"PATH": "/bin", "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"}
    assert thread_env(0, {"OMP_NUM_THREADS": "7"}) == {"OMP_NUM_THREADS": "7"}  # 0: torch's own default
    with mock.patch.dict(os.environ, {"OMP_NUM_THREADS": "5"}):
        assert default_threads() == default_threads(4) == 5  # the caller already chose
    with mock.patch.dict(os.environ), mock.patch.object(train_runner, "available_cores", return_value=8):
        os.environ.pop("OMP_NUM_THREADS", None)
        assert [default_threads(n) for n in (1, 2, 3, 8, 16)] == [8, 4, 2, 1, 1]


class Stop(Exception):
    pass


def capture_run_train(calls):
    def fake(cmd, *args, **kwargs):
        calls.append(kwargs.get("threads"))
        raise Stop

    return fake


def test_sweep_passes_threads_to_every_training_run(data_dir, tmp_path):
    calls = []
    heldout = tmp_path / "heldout"
    heldout.mkdir()
    (heldout / "en-xx.en").write_text("a house\n")  # the sweep checks for held-out pairs before training
    (heldout / "en-xx.xx").write_text("una casa\n")
    argv = ["--data", str(data_dir), "--heldout", str(heldout), "--out", str(tmp_path / "sweep")]
    argv += ["--settings", "weam", "--alphas", "1", "--threads", "3"]
    with mock.patch("fairseq_weam.evaluation.sweep.run_train", capture_run_train(calls)), pytest.raises(Stop):
        sweep_cli.run(argv)
    assert calls == [3]
    assert sweep_cli.get_parser().parse_args(argv[:6]).threads == default_threads()


def test_demo_passes_threads_to_training(tmp_path):
    calls = []
    for name in ("corpus", "data"):  # finished steps are kept: straight to training
        (tmp_path / name).mkdir()
    with mock.patch.object(demo, "run_train", capture_run_train(calls)), pytest.raises(Stop):
        demo.run(["--out", str(tmp_path), "--threads", "3"])
    assert calls == [3]
    assert demo.parse_args([]).threads == default_threads()
