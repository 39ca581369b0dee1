"""Helpers to run the real fairseq command-line tools in subprocesses and read their logs."""

import os
import signal
import sys

from fairseq_weam.train_runner import flags, json_records, never, run_train, shutdown_abort, train_command  # noqa: F401

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USER_DIR = os.path.join(REPO, "fairseq_weam")
BIN = os.path.dirname(sys.executable)

# The test model: smaller than the package's tiny model (train_runner.TINY_MODEL), so that a
# fairseq-train test of a few dozen updates takes seconds on one core. Every test helper uses it.
TEST_MODEL = {
    "arch": "roberta",
    "encoder_layers": 2,
    "encoder_embed_dim": 64,
    "encoder_ffn_embed_dim": 128,
    "encoder_attention_heads": 2,
    "tokens_per_sample": 64,
}
TEST_MODEL_ARGS = flags(TEST_MODEL)


def fairseq_train(data, save_dir, *extra, max_update=40, check=True, task="weam", criterion="weam"):
    """Run fairseq-train with the test model; return (its TrainRun, parsed json log records)."""
    cmd = train_command(
        data,
        *TEST_MODEL_ARGS,
        "--optimizer",
        "adam",
        "--lr",
        "2e-3",
        "--lr-scheduler",
        "inverse_sqrt",
        "--warmup-updates",
        "10",
        "--batch-size",
        "16",
        "--max-update",
        str(max_update),
        "--save-dir",
        str(save_dir),
        "--no-epoch-checkpoints",
        "--cpu",
        "--num-workers",
        "0",
        "--seed",
        "1",
        "--log-format",
        "json",
        "--log-interval",
        "5",
        "--no-progress-bar",
        *extra,
        task=task,
        criterion=criterion,
        user_dir=USER_DIR,
    )
    run = run_train(cmd, show=never, env=train_env(), cwd=REPO, check=False)
    if check and run.returncode != 0:
        raise AssertionError(f"fairseq-train failed ({run.returncode}):\n{run.output[-4000:]}")
    return run, run.records


def default_sigint():
    """``preexec_fn`` for a child the test interrupts with SIGINT: a job started in the background
    by a non-interactive shell (``cmd &``) ignores SIGINT, children inherit that, and Python then
    never raises KeyboardInterrupt. Restore the default so the child reacts as in a terminal."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def train_env():
    env = dict(os.environ)
    env.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)  # the safe loader must do without it
    env["OMP_NUM_THREADS"] = "1"  # 2 cores: two workers x 2 threads would thrash
    env["PYTHONUNBUFFERED"] = "1"
    return env


def train_inner(records):
    return [r for r in records if r["_tag"] == "train_inner"]
