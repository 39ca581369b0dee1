"""Shared helpers of the reliability tests (resume, distributed): a two-pair synthetic corpus,
the real ``fairseq-train`` in a subprocess, and comparison of its json log records.

fairseq prints metrics rounded (``round=3`` for losses in our criterion), so "the same within
float tolerance" is checked as: equal up to one unit in the last printed digit.
"""

import json
import os
import socket
import subprocess
import tempfile

from e2e import BIN, REPO, TEST_MODEL_ARGS, USER_DIR, default_sigint, never, train_command, train_env  # noqa: F401
from e2e import run_train as _run
from synthetic_corpus import build_raw, make_pairs, preprocess, write_split

# Wall-clock and throughput fields differ between any two runs; everything else must match.
TIMING_KEYS = {"wps", "ups", "wall", "train_wall", "gb_free", "clip", "loss_scale"}


def train_args(data, save_dir, *extra):
    return train_command(
        data,
        *TEST_MODEL_ARGS,
        "--optimizer",
        "adam",
        "--lr",
        "1e-3",
        "--lr-scheduler",
        "inverse_sqrt",
        "--warmup-updates",
        "10",
        "--batch-size",
        "16",
        "--required-batch-size-multiple",
        "1",
        "--save-dir",
        str(save_dir),
        "--cpu",
        "--num-workers",
        "0",
        "--seed",
        "7",
        "--log-format",
        "json",
        "--log-interval",
        "1",
        "--no-progress-bar",
        *extra,
        user_dir=USER_DIR,
    )


def run_train(data, save_dir, *extra, timeout=240, check=True):
    """Run fairseq-train to completion; return (returncode, combined stdout+stderr)."""
    run = _run(train_args(data, save_dir, *extra), show=never, env=train_env(), cwd=REPO, timeout=timeout, check=False)
    if check and run.returncode != 0:
        raise AssertionError(f"fairseq-train failed ({run.returncode}):\n{run.output[-4000:]}")
    return run.returncode, run.output


def records(text, tag):
    """json log records of one kind (``train_inner``, ``valid``, ``train``) in order."""
    out = []
    marker = f"| {tag} | "
    for line in text.splitlines():
        k = line.find(marker)
        if k >= 0:
            out.append(json.loads(line[k + len(marker) :]))
    return out


def by_update(recs, key="num_updates"):
    return {int(r[key]): r for r in recs}


def _printed_unit(value: str) -> float:
    return 10.0 ** -len(value.split(".")[1]) if "." in value else 1.0


def close(a: str, b: str) -> bool:
    """Equal up to one unit in the last printed digit of either value."""
    try:
        fa, fb = float(a), float(b)
    except (TypeError, ValueError):
        return a == b
    return abs(fa - fb) <= max(_printed_unit(str(a)), _printed_unit(str(b))) * 1.01 + 1e-12


def metric_keys(rec):
    return sorted(k for k in rec if k.split("_", 1)[-1] not in TIMING_KEYS and k not in TIMING_KEYS)


def compare(ref, got, what="record", ignore=()):
    """List of human-readable differences between two log records (timing fields ignored)."""
    diffs = []
    keys = [k for k in metric_keys(ref) if k not in ignore]
    if keys != [k for k in metric_keys(got) if k not in ignore]:
        diffs.append(f"{what}: different fields {keys} vs {metric_keys(got)}")
    for k in keys:
        if k in got and not close(ref[k], got[k]):
            diffs.append(f"{what} {k}: {ref[k]} != {got[k]}")
    return diffs


def build_two_pair_data(root):
    """A binarized two-pair corpus (xx-yy 320 pairs, xx-zz 96 pairs: unequal shares) with one
    shared sentencepiece model and dictionary; returns the data directory."""
    root = str(root)
    data = os.path.join(root, "data")
    raw1 = os.path.join(root, "raw-xx-yy")
    sp = build_raw(raw1, n_train=320, n_valid=32, src="xx", tgt="yy", seed=0)
    preprocess(raw1, data, "xx", "yy")
    raw2 = os.path.join(root, "raw-xx-zz")
    os.makedirs(raw2, exist_ok=True)
    # Same seed = same lexicon (so the shared sentencepiece model fits); the first 352 pairs are
    # the ones build_raw used for xx-yy, the rest are new sentences.
    s, t, links = make_pairs(352 + 96 + 16, seed=0)
    s, t, links = s[352:], t[352:], links[352:]
    write_split(sp, raw2, "train", "xx", "zz", s[:96], t[:96], links[:96])
    write_split(sp, raw2, "valid", "xx", "zz", s[96:], t[96:], links[96:])
    preprocess(raw2, data, "xx", "zz", extra=("--srcdict", os.path.join(data, "dict.txt")))
    return data


_DATA_CACHE = {}


def shared_data_dir():
    """One two-pair corpus per test process (building it takes seconds)."""
    if "data" not in _DATA_CACHE:
        root = tempfile.mkdtemp(prefix="weam-reliability-")
        _DATA_CACHE["data"] = build_two_pair_data(root)
    return _DATA_CACHE["data"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def interrupt_train(cmd, sig, after_update):
    """Start ``cmd`` (a fairseq-train command), send ``sig`` once update ``after_update`` is
    logged; return the log. The run must stop on the signal (non-zero exit)."""
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
        env=train_env(),
        preexec_fn=default_sigint,
    )
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if "| train_inner |" in line and f'"num_updates": "{after_update}"' in line:
                proc.send_signal(sig)
                break
        lines.append(proc.stdout.read())
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = "".join(lines)
    assert proc.returncode != 0, "training finished before it could be interrupted:\n" + log[-2000:]
    return log


GLOO_2 = ("--distributed-world-size", 2, "--distributed-backend", "gloo", "--distributed-no-spawn")


def run_gloo_workers(command_for, timeout=240):
    """Run 2 fairseq-train workers on this machine (gloo over a free loopback port):
    ``command_for(dist_args)`` builds one worker's command from its distributed flags. Both must
    succeed; returns their outputs, rank 0 first."""
    port = free_port()
    procs = [
        subprocess.Popen(
            command_for((*GLOO_2, "--distributed-init-method", f"tcp://127.0.0.1:{port}", "--distributed-rank", rank)),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=REPO,
            env=train_env(),
        )
        for rank in (0, 1)
    ]
    outs = []
    try:
        for p in procs:
            outs.append(p.communicate(timeout=timeout)[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for rank, (p, out) in enumerate(zip(procs, outs)):
        assert p.returncode == 0, f"worker {rank} failed ({p.returncode}):\n{out[-4000:]}"
    return outs
