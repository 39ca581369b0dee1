"""Helpers to run the real fairseq command-line tools in subprocesses and read their logs."""

import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USER_DIR = os.path.join(REPO, "fairseq_weam")
BIN = os.path.dirname(sys.executable)

TINY_MODEL = [
    "--arch", "roberta",
    "--encoder-layers", "2",
    "--encoder-embed-dim", "64",
    "--encoder-ffn-embed-dim", "128",
    "--encoder-attention-heads", "2",
]


def fairseq_train(data, save_dir, *extra, max_update=40, check=True, task="weam", criterion="weam"):
    """Run fairseq-train with a tiny RoBERTa; return (completed process, parsed json log records)."""
    cmd = [
        os.path.join(BIN, "fairseq-train"), str(data),
        "--user-dir", USER_DIR,
        "--task", task, "--criterion", criterion,
        *TINY_MODEL,
        "--tokens-per-sample", "64",
        "--optimizer", "adam", "--lr", "2e-3", "--lr-scheduler", "inverse_sqrt", "--warmup-updates", "10",
        "--batch-size", "16", "--max-update", str(max_update),
        "--save-dir", str(save_dir), "--no-epoch-checkpoints",
        "--cpu", "--num-workers", "0", "--seed", "1",
        "--log-format", "json", "--log-interval", "5", "--no-progress-bar",
        *extra,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=train_env())
    if shutdown_abort(proc.returncode, proc.stdout + proc.stderr):
        proc.returncode = 0
    if check and proc.returncode != 0:
        raise AssertionError(f"fairseq-train failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc, json_records(proc.stdout + proc.stderr)


def train_env():
    env = dict(os.environ)
    env.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)  # the safe loader must do without it
    env["OMP_NUM_THREADS"] = "1"  # 2 cores: two workers x 2 threads would thrash
    env["PYTHONUNBUFFERED"] = "1"
    return env


EXIT_ABORT = "terminate called without an active exception"


def shutdown_abort(returncode, output) -> bool:
    """Seen rarely under heavy load: after training, validation and saving had all finished, a
    C++ std::thread was destroyed while joinable during interpreter shutdown (SIGABRT). Nothing
    the run produced is affected, so callers treat it as the success it was."""
    return returncode == -6 and EXIT_ABORT in output and "done training" in output


def json_records(text):
    """The json log lines fairseq prints ({"epoch": ..., "loss": ...})."""
    records = []
    for line in text.splitlines():
        start = line.find("{")
        if start < 0 or "| INFO |" not in line:
            continue
        try:
            rec = json.loads(line[start:])
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict):
            tag = line[:start].split("|")[-2].strip() if line.count("|") >= 3 else ""
            rec["_tag"] = tag
            records.append(rec)
    return records


def train_inner(records):
    return [r for r in records if r["_tag"] == "train_inner"]
