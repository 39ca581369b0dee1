"""The contrastive queue, momentum encoder and gathered negatives through the real fairseq-train:
the momentum update after each optimizer step, exact resume with the queue and key encoder
restored from the checkpoint (and a resume with an emptied queue that must diverge), the state
kept out of the model, 2 gloo workers with --contrastive-gather equal to one process holding the
combined batch, and a bad flag stopping fairseq-train before training."""

import signal

import pytest
import torch
from reliability_helpers import (
    by_update,
    compare,
    interrupt_train,
    records,
    run_gloo_workers,
    run_train,
    shared_data_dir,
    train_args,
)
from synthetic_corpus import build_raw, preprocess

from fairseq_weam.core.checkpoints import build_model, load_checkpoint
from fairseq_weam.core.data_dir import load_dictionary

MOMENTUM = 0.9
XLCO = ("--contrastive-weight", 1, "--contrastive-queue-size", 64, "--contrastive-momentum", MOMENTUM)
MAX_UPDATE = 16
# A checkpoint after every update: consecutive ones show the momentum step, any one resumes.
SAVES = ("--save-interval-updates", 1, "--keep-interval-updates", MAX_UPDATE, "--no-epoch-checkpoints")


@pytest.fixture(scope="module")
def data():
    return shared_data_dir()


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory):
    """The uninterrupted run with queue + momentum: (log, save dir)."""
    save = tmp_path_factory.mktemp("xlco-reference")
    _, out = run_train(data, save, "--max-update", MAX_UPDATE, *XLCO, *SAVES)
    assert len(records(out, "train_inner")) == MAX_UPDATE
    return out, save


def ctr_state(path):
    state = torch.load(path, map_location="cpu", weights_only=False)
    return state, state["extra_state"]["WeamTask"]["criterion"]["ctr"]


def test_checkpoints_hold_the_queue_and_key_encoder_after_each_momentum_step(reference):
    _, save = reference
    s8, ctr8 = ctr_state(save / "checkpoint_1_8.pt")
    s9, ctr9 = ctr_state(save / "checkpoint_1_9.pt")
    # 8 updates x 16 pairs > 64 slots: full, and wrapped around.
    assert ctr8["queue"]["size"] == 64 and ctr8["queue"]["filled"] == 64
    assert ctr8["queue"]["x"].shape == (64, 64) and ctr8["queue"]["x"].abs().sum() > 0
    # After update 9's optimizer step: theta_k = m * theta_k(8) + (1 - m) * theta(9).
    key8, key9, model9 = ctr8["key_encoder"], ctr9["key_encoder"], s9["model"]
    assert sorted(key9) == sorted(model9)  # a copy of the model's tensors, nothing else
    floats = [k for k in key9 if key9[k].is_floating_point() and "version" not in k]
    assert floats
    for k in floats:
        expected = MOMENTUM * key8[k] + (1 - MOMENTUM) * model9[k].float()
        assert torch.allclose(key9[k], expected, atol=1e-6), k
    # ... and it lags: not the trained weights themselves.
    assert any(not torch.allclose(key9[k], model9[k].float(), atol=1e-4) for k in floats)


def test_the_exported_model_is_the_plain_encoder(reference, data):
    """Evaluation and the transformers export load the checkpoint's model alone (strict): the
    queue and key encoder live in extra_state and stay out of it."""
    _, save = reference
    path = str(save / "checkpoint_last.pt")
    state = load_checkpoint(path)
    assert not any("key" in k and "encoder" in k.split(".")[0] for k in state["model"])
    model, _ = build_model(state, load_dictionary(data, add_mask=True), path)
    assert sum(p.numel() for p in model.parameters()) == sum(
        v.numel()
        for k, v in state["extra_state"]["WeamTask"]["criterion"]["ctr"]["key_encoder"].items()
        if k in dict(model.named_parameters())
    )


def interrupt(data, save_dir, after_update, *extra):
    cmd = train_args(data, save_dir, "--max-update", MAX_UPDATE, *XLCO, *SAVES, *extra)
    return interrupt_train(cmd, signal.SIGINT, after_update)


def diffs_after(ref_log, log, start):
    ref = by_update(records(ref_log, "train_inner"))
    got = by_update(records(log, "train_inner"))
    assert sorted(got) == list(range(start + 1, MAX_UPDATE + 1)), sorted(got)
    return [d for u in sorted(got) for d in compare(ref[u], got[u], f"update {u}")]


def test_interrupted_run_resumes_exactly_with_queue_and_momentum(data, reference, tmp_path):
    ref_log, _ = reference
    save = tmp_path / "run"
    interrupt(data, save, after_update=7)
    _, resumed = run_train(data, save, "--max-update", MAX_UPDATE, *XLCO, *SAVES)
    loaded = [line for line in resumed.splitlines() if "Loaded checkpoint" in line]
    assert loaded, resumed[-2000:]
    start = int(loaded[-1].split("@")[1].split()[0])
    assert 0 < start < MAX_UPDATE
    diffs = diffs_after(ref_log, resumed, start)
    assert not diffs, "resumed run diverges from the uninterrupted one:\n" + "\n".join(diffs[:20])


def test_resume_with_an_emptied_queue_diverges(data, reference, tmp_path):
    """The comparison above has the power to see a lost queue: the same checkpoint with only the
    queue emptied (key encoder kept) resumes into different contrastive losses."""
    ref_log, save = reference
    state, ctr = ctr_state(save / "checkpoint_1_8.pt")
    ctr["queue"] = {"size": 64, "ptr": 0, "filled": 0, "x": None, "y": None, "src_key": None, "tgt_key": None}
    emptied = tmp_path / "emptied.pt"
    torch.save(state, emptied)
    _, resumed = run_train(data, tmp_path / "new", "--max-update", MAX_UPDATE, *XLCO, *SAVES, "--restore-file", emptied)
    diffs = diffs_after(ref_log, resumed, 8)
    assert any(" ctr_loss" in d for d in diffs), "an empty queue went unnoticed"


# ---------------------------------------------------------------------------------------------
# Gathered negatives: 2 gloo workers x 16 pairs == 1 process x 32 pairs


@pytest.fixture(scope="module")
def data32(tmp_path_factory):
    """32 training pairs: 2 batches of 16 (one per worker) or 1 batch of 32, every update."""
    root = tmp_path_factory.mktemp("pairs32")
    build_raw(str(root / "raw"), n_train=32, n_valid=32)
    preprocess(str(root / "raw"), str(root / "data"))
    return str(root / "data")


GATHER_RUN = ("--max-update", 4, "--dropout", 0, "--attention-dropout", 0, "--ddp-backend", "legacy_ddp", "--no-save")
GATHER = ("--contrastive-weight", 1, "--contrastive-gather")
# Queue of 2 global batches: full after update 2, then each update evicts one whole older batch. (The
# gathered keys enter in rank order, the single process's in batch order: a queue size that is not a
# multiple of the global batch would evict a different part of the oldest batch.)
GATHER_XLCO = (*GATHER, "--contrastive-queue-size", 64, "--contrastive-momentum", 0.5)


def two_workers(data, save, *extra):
    return run_gloo_workers(
        lambda dist: train_args(data, save, *GATHER_RUN, "--batch-size", 16, *dist, *extra), timeout=300
    )[0]


def all_diffs(single, multi):
    diffs = []
    for tag, key in (("train_inner", "num_updates"), ("valid", "valid_num_updates")):
        ref, got = records(single, tag), records(multi, tag)
        assert len(ref) == len(got) and ref, (tag, len(ref), len(got))
        # The gradient norm sums the same terms in another order (a batch of 32 vs two of 16 and
        # an all-reduce), and Adam's first steps turn float noise in near-zero gradients into
        # full-size steps: it matches to 0.1 %, every loss and accuracy to the printed digit.
        ignore = ("valid_wpb", "valid_bsz") if tag == "valid" else ("gnorm",)
        for a, b in zip(ref, got):
            diffs += compare(a, b, f"{tag} {a[key]}", ignore)
            if tag == "train_inner" and abs(float(a["gnorm"]) - float(b["gnorm"])) > 1e-3 * float(a["gnorm"]):
                diffs.append(f"{tag} {a[key]} gnorm: {a['gnorm']} != {b['gnorm']}")
    return diffs


@pytest.mark.parametrize("flags", [pytest.param(GATHER, id="in-batch"), pytest.param(GATHER_XLCO, id="queue+momentum")])
def test_two_gloo_workers_with_gather_match_one_process_holding_both_batches(data32, tmp_path, flags):
    _, single = run_train(data32, tmp_path / "one", *GATHER_RUN, "--batch-size", 32, *flags)
    multi = two_workers(data32, tmp_path / "two", *flags)
    diffs = all_diffs(single, multi)
    assert not diffs, "2 gathering workers differ from 1 process with the combined batch:\n" + "\n".join(diffs[:20])
    if flags is GATHER:
        # Without --contrastive-gather each worker sees its own 15 negatives: a different loss.
        alone = two_workers(data32, tmp_path / "alone", "--contrastive-weight", 1)
        first, first_alone = records(single, "train_inner")[0], records(alone, "train_inner")[0]
        assert float(first_alone["ctr_loss"]) < float(first["ctr_loss"]) - 0.1, (first_alone, first)
        assert first_alone["ml_loss"] == first["ml_loss"]  # the same batches otherwise


def test_bad_flag_stops_fairseq_train_with_one_line(data32, tmp_path):
    rc, out = run_train(data32, tmp_path / "x", "--max-update", 1, "--contrastive-momentum", 1.0, check=False)
    assert rc != 0 and not records(out, "train_inner")
    errors = [line for line in out.splitlines() if line.startswith("fairseq-train: error:")]  # one line, no traceback
    assert errors == ["fairseq-train: error: --contrastive-momentum must be in [0, 1), got 1.0"], out[-2000:]
    assert "Traceback" not in out
