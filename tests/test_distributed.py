"""``--task weam`` under fairseq's own data-parallel training, on CPU with the gloo backend.

Two worker processes, each with ``--batch-size 16``, must follow one process with
``--update-freq 2`` update by update: fairseq shards the epoch's batch list round-robin
(worker r takes batches r, r+2, ...), exactly the pairs of batches that one process
accumulates; our dataset's masks depend only on (seed, epoch, index), not on the worker; and the
criterion's logging outputs are sums, so fairseq's all-reduce of them gives the single-process
numbers -- per-language metrics included. Dropout is off because one process draws the second
micro-batch's dropout from the same torch RNG stream as the first, while worker 1 starts
from the reseeded state (``seed + num_updates``): same distribution, different draws.

fairseq on CPU needs (see docs/reliability.md):
* ``--ddp-backend legacy_ddp`` (torch's DistributedDataParallel is built with device_ids=[0]);
* explicit per-process ranks: fairseq's spawn and its torchrun detection count CUDA devices
  (``min(cuda_count, world_size)`` processes, ``rank % cuda_count``) and fail with none.
"""

import os
import subprocess

import pytest
from reliability_helpers import (
    BIN,
    GLOO_2,
    REPO,
    compare,
    free_port,
    records,
    run_gloo_workers,
    run_train,
    shared_data_dir,
    train_args,
    train_env,
)

# Batches of <= 17 pairs: 19 per epoch (xx-yy alone) or 25 (both pairs), an odd number, so the
# epoch's last update is one batch in one process and one batch + fairseq's empty dummy batch
# on worker 1; both runs cross into epoch 2.
MAX_UPDATE = 16
EXACT = (
    "--max-update",
    MAX_UPDATE,
    "--batch-size",
    17,
    "--dropout",
    0,
    "--attention-dropout",
    0,
    "--ddp-backend",
    "legacy_ddp",
    "--save-interval-updates",
    8,
)
DIST = GLOO_2


@pytest.fixture(scope="module")
def data():
    return shared_data_dir()


ONE_PAIR = ("--lang-pairs", "xx-yy")
TWO_PAIRS = ("--lang-pairs", "xx-yy,xx-zz")


@pytest.fixture(scope="module")
def single(data, tmp_path_factory):
    """The one-process runs with --update-freq 2, by language pairs (computed on demand)."""
    cache = {}

    def get(pairs):
        if pairs not in cache:
            _, out = run_train(data, tmp_path_factory.mktemp("single"), *EXACT, *pairs, "--update-freq", 2)
            assert len(records(out, "train_inner")) == MAX_UPDATE
            cache[pairs] = out
        return cache[pairs]

    return get


def assert_same_training(single_log, multi_log):
    diffs = []
    for tag, key in (("train_inner", "num_updates"), ("valid", "valid_num_updates"), ("train", "train_num_updates")):
        ref, got = records(single_log, tag), records(multi_log, tag)
        assert len(ref) == len(got) and ref, f"{tag}: {len(ref)} records in one process, {len(got)} with 2 workers"
        # Validation is sharded too: a validation step of 2 workers holds 2 batches, so the
        # per-step sizes differ by design; losses and accuracies are sums and must not.
        ignore = ("valid_wpb", "valid_bsz") if tag == "valid" else ()
        for a, b in zip(ref, got):
            diffs += compare(a, b, f"{tag} {a[key]}", ignore)
    assert not diffs, "2 workers differ from 1 process with --update-freq 2:\n" + "\n".join(diffs[:20])


@pytest.mark.parametrize("pairs", [pytest.param(ONE_PAIR, id="one-pair"), pytest.param(TWO_PAIRS, id="two-pairs")])
def test_two_gloo_workers_match_one_process_with_update_freq_2(data, single, tmp_path, pairs):
    save = tmp_path / "save"
    rank0, rank1 = run_gloo_workers(lambda dist: train_args(data, save, *EXACT, *pairs, *dist))
    assert "distributed init (rank 1)" in rank1
    assert not records(rank1, "train_inner")  # fairseq logs metrics on rank 0 only
    assert_same_training(single(pairs), rank0)
    # Only rank 0 writes checkpoints; the mid-epoch one resumes like any other.
    assert sorted(p.name for p in save.iterdir() if p.suffix == ".pt") == [
        "checkpoint1.pt",
        "checkpoint_1_8.pt",
        "checkpoint_2_16.pt",
        "checkpoint_best.pt",
        "checkpoint_last.pt",
    ]


def test_per_language_metrics_are_logged_and_consistent(single):
    """The all-reduced per-language values equal the single-process ones (checked in the test
    above for every field); here: they are there, and consistent with the totals."""
    inner = records(single(TWO_PAIRS), "train_inner")
    pairs = sorted({k.split("_", 2)[2] for k in inner[0] if k.startswith("ml_loss_")})
    assert pairs == ["xx-yy", "xx-zz"], sorted(inner[0])
    for rec in inner:
        # The overall ml_loss is the count-weighted mean of the per-language ones, so it lies
        # between them whatever the shares of the two languages in this batch.
        per_lang = [float(rec[f"ml_loss_{p}"]) for p in pairs if f"ml_loss_{p}" in rec]
        assert min(per_lang) - 1e-3 <= float(rec["ml_loss"]) <= max(per_lang) + 1e-3, rec


def test_torchrun_launch_matches_too(data, single, tmp_path):
    """torchrun on CPU: fairseq's own torchrun detection computes ``rank % cuda_device_count()``
    (ZeroDivisionError without GPUs), so ranks come from torchrun's environment via a shell."""
    save = tmp_path / "save"
    args = train_args(data, save, *EXACT, *ONE_PAIR, *DIST, "--distributed-init-method", "env://")
    cmd = [
        os.path.join(BIN, "torchrun"),
        "--nproc-per-node",
        "2",
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(free_port()),
        "--no-python",
        "sh",
        "-c",
        'exec "$@" --distributed-rank "$RANK" --distributed-world-size "$WORLD_SIZE"',
        "sh",
        *args,
    ]
    proc = subprocess.run(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO, env=train_env(), timeout=240
    )
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert_same_training(single(ONE_PAIR), proc.stdout)
