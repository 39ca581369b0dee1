"""Exact resume of ``fairseq-train --task weam`` and safe checkpoint files.

An uninterrupted reference run is compared, update by update, with runs that are interrupted
mid-epoch (SIGINT, SIGTERM) and resumed from ``checkpoint_last.pt`` or from an interval
checkpoint (``--save-interval-updates``). Dropout and BERT's random-token replacement stay on:
fairseq reseeds torch with ``seed + num_updates`` before every update and our dataset derives
each example's masks from ``(seed, epoch, index)``, so nothing depends on how the process got
to an update. Every logged metric (losses, accuracies, per-language metrics, gnorm, lr, ...)
must match to the printed precision, also the validation runs after the resume.

Corrupted checkpoints: a truncated or damaged ``checkpoint_last.pt`` must stop fairseq-train
with our CheckpointError naming the file -- no hang, no silent restart from scratch.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import zipfile

import pytest
from reliability_helpers import (
    REPO,
    by_update,
    compare,
    interrupt_train,
    records,
    run_train,
    shared_data_dir,
    train_args,
    train_env,
)

# 416 training pairs / batch 16 = 26 updates per epoch: interval checkpoints at 10 and 20 are
# mid-epoch, the run ends in epoch 2.
SAVE_EVERY = 10
MAX_UPDATE = 30
COMMON = ("--save-interval-updates", SAVE_EVERY, "--keep-interval-updates", 5)
LOADED = re.compile(r"Loaded checkpoint (\S+) \(epoch (\d+) @ (\d+) updates\)")


@pytest.fixture(scope="module")
def data():
    return shared_data_dir()


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory):
    """The uninterrupted run: (log text, save dir)."""
    save = tmp_path_factory.mktemp("reference")
    _, out = run_train(data, save, "--max-update", MAX_UPDATE, *COMMON)
    assert len(records(out, "train_inner")) == MAX_UPDATE
    return out, save


def updates_per_epoch(log):
    epochs = {}
    for r in records(log, "train_inner"):
        epochs.setdefault(int(r["epoch"]), []).append(int(r["num_updates"]))
    return len(epochs[1])


def assert_continues_reference(ref_log, resumed_log, start):
    """Every update after ``start`` and every validation after it match the reference run."""
    ref = by_update(records(ref_log, "train_inner"))
    got = by_update(records(resumed_log, "train_inner"))
    assert sorted(got) == list(range(start + 1, MAX_UPDATE + 1)), sorted(got)
    diffs = [d for u in sorted(got) for d in compare(ref[u], got[u], f"update {u}")]
    ref_valid = by_update(records(ref_log, "valid"), "valid_num_updates")
    got_valid = by_update(records(resumed_log, "valid"), "valid_num_updates")
    assert got_valid, "the resumed run never validated"
    for u in sorted(got_valid):
        diffs += compare(ref_valid[u], got_valid[u], f"valid after update {u}")
    assert not diffs, "resumed run diverges from the uninterrupted one:\n" + "\n".join(diffs[:20])


def interrupt(data, save_dir, sig, after_update, *extra):
    """Start training, send ``sig`` once update ``after_update`` is logged; return the log."""
    return interrupt_train(train_args(data, save_dir, "--max-update", MAX_UPDATE, *COMMON, *extra), sig, after_update)


def loaded_from(log):
    m = LOADED.search(log)
    assert m, "the resumed run did not load a checkpoint:\n" + log[-3000:]
    return m.group(1), int(m.group(2)), int(m.group(3))


def check_partial_log(ref_log, log):
    """What was logged before the interrupt is the reference run too."""
    partial = by_update(records(log, "train_inner"))
    ref = by_update(records(ref_log, "train_inner"))
    assert partial and not [d for u in partial for d in compare(ref[u], partial[u], f"update {u}")]


def test_sigint_mid_epoch_then_resume_from_checkpoint_last(data, reference, tmp_path):
    ref_log, _ = reference
    per_epoch = updates_per_epoch(ref_log)
    assert per_epoch > 2 * SAVE_EVERY  # so the interrupt below is mid-epoch
    save = tmp_path / "run"
    check_partial_log(ref_log, interrupt(data, save, signal.SIGINT, after_update=SAVE_EVERY + 3))

    _, resumed = run_train(data, save, "--max-update", MAX_UPDATE, *COMMON)
    path, epoch, start = loaded_from(resumed)
    assert path.endswith("checkpoint_last.pt")
    # Normally the interval checkpoint just before the interrupt (10); a slow reader of the log
    # may let the run reach the next one (20), still mid-epoch 1.
    assert epoch == 1 and start % SAVE_EVERY == 0 and 0 < start < per_epoch, (epoch, start)
    assert_continues_reference(ref_log, resumed, start)  # crosses into epoch 2 after the resume


def test_sigterm_mid_epoch_then_resume_from_the_interval_checkpoint_in_a_new_directory(data, reference, tmp_path):
    """checkpoint_last.pt lost with the machine: --restore-file checkpoint_1_10.pt continues exactly."""
    ref_log, _ = reference
    old = tmp_path / "old"
    check_partial_log(ref_log, interrupt(data, old, signal.SIGTERM, after_update=SAVE_EVERY + 3))
    interval = old / f"checkpoint_1_{SAVE_EVERY}.pt"
    assert interval.exists(), sorted(os.listdir(old))
    _, resumed = run_train(data, tmp_path / "new", "--max-update", MAX_UPDATE, *COMMON, "--restore-file", interval)
    assert loaded_from(resumed) == (str(interval), 1, SAVE_EVERY)
    assert_continues_reference(ref_log, resumed, SAVE_EVERY)


def test_resume_from_an_end_of_epoch_checkpoint(data, reference, tmp_path):
    """Epoch 2's data order and masks after a resume at the epoch boundary (what a --max-epoch
    stop leaves behind: checkpoint1.pt == checkpoint_last.pt of that run)."""
    ref_log, ref_save = reference
    per_epoch = updates_per_epoch(ref_log)
    epoch_end = ref_save / "checkpoint1.pt"
    _, resumed = run_train(data, tmp_path / "new", "--max-update", MAX_UPDATE, *COMMON, "--restore-file", epoch_end)
    assert loaded_from(resumed)[1:] == (2, per_epoch)  # fairseq names the epoch to come
    assert_continues_reference(ref_log, resumed, per_epoch)


# ---------------------------------------------------------------------------------------------
# Damaged checkpoints through the real fairseq-train


def _truncate(path):
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size // 2)


def _flip_tensor_bytes(path):
    """Flip 64 bytes inside the largest tensor record: the zip structure stays valid."""
    with zipfile.ZipFile(path) as z:
        info = max(z.infolist(), key=lambda i: i.file_size)
    with open(path, "r+b") as f:
        f.seek(info.header_offset + 200)
        chunk = bytearray(f.read(64))
        f.seek(info.header_offset + 200)
        f.write(bytes(b ^ 0xFF for b in chunk))


def test_truncated_checkpoint_last_stops_fairseq_train_with_a_clear_error(data, reference, tmp_path):
    _, ref_save = reference
    save = tmp_path / "run"
    save.mkdir()
    last = save / "checkpoint_last.pt"
    shutil.copyfile(ref_save / f"checkpoint_1_{SAVE_EVERY}.pt", last)
    _truncate(str(last))
    rc, out = run_train(data, save, "--max-update", MAX_UPDATE, *COMMON, timeout=120, check=False)
    assert rc != 0, "training went on from a truncated checkpoint:\n" + out[-3000:]
    assert not records(out, "train_inner"), "silently restarted"
    # One line (core/checks.py: one_line_errors), not a traceback.
    assert "Traceback" not in out
    errors = [l for l in out.splitlines() if l.startswith("fairseq-train: error: ")]
    assert errors, out[-3000:]
    assert str(last) in errors[-1] and "truncated or corrupted" in errors[-1]


# ---------------------------------------------------------------------------------------------
# Damaged files through fairseq's loader in this process (fast), and atomic writes


def _load(path):
    from fairseq import checkpoint_utils

    import fairseq_weam  # noqa: F401  (installs the guarded loader)

    return checkpoint_utils.load_checkpoint_to_cpu(str(path))


def _truncate_to(fraction):
    def damage(path):
        with open(path, "r+b") as f:
            f.truncate(int(os.path.getsize(path) * fraction))

    return damage


def _garbage(path):
    with open(path, "w") as f:
        f.write("not a checkpoint\n")


def _flip_pickle_bytes(path):
    with zipfile.ZipFile(path) as z:
        info = next(i for i in z.infolist() if i.filename.endswith("data.pkl"))
    with open(path, "r+b") as f:
        f.seek(info.header_offset + 100)
        chunk = bytearray(f.read(16))
        f.seek(info.header_offset + 100)
        f.write(bytes(b ^ 0xFF for b in chunk))


DAMAGE = [
    pytest.param(_truncate_to(0.0), id="empty"),
    pytest.param(_truncate_to(0.1), id="truncated-10%"),
    pytest.param(_truncate_to(0.5), id="truncated-50%"),
    pytest.param(_truncate_to(0.999), id="truncated-last-bytes"),
    pytest.param(_flip_tensor_bytes, id="bit-rot-in-weights"),
    pytest.param(_flip_pickle_bytes, id="bit-rot-in-pickle"),
    pytest.param(_garbage, id="not-a-checkpoint"),
]


@pytest.mark.parametrize("damage", DAMAGE)
def test_damaged_checkpoint_is_a_checkpoint_error_naming_the_file(reference, tmp_path, damage):
    from fairseq_weam.core.checkpoint_safety import CheckpointError

    path = tmp_path / "checkpoint_last.pt"
    shutil.copyfile(reference[1] / f"checkpoint_1_{SAVE_EVERY}.pt", path)
    _load(path)  # intact: loads
    damage(str(path))
    with pytest.raises(CheckpointError) as err:
        _load(path)
    assert str(path) in str(err.value) and "corrupt" in str(err.value)


def test_checkpoint_write_is_atomic(reference, tmp_path, monkeypatch):
    """fairseq's torch_persistent_save writes FILE.tmp and renames it: a write that dies halfway
    leaves the previous checkpoint intact."""
    import torch
    from fairseq import checkpoint_utils

    path = tmp_path / "checkpoint_last.pt"
    shutil.copyfile(reference[1] / f"checkpoint_1_{SAVE_EVERY}.pt", path)
    before = path.read_bytes()
    state = _load(path)

    def dies_halfway(obj, f, *args, **kwargs):
        f.write(before[: len(before) // 2])
        raise KeyboardInterrupt  # a signal; fairseq retries only on Exception

    monkeypatch.setattr(torch, "save", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        checkpoint_utils.torch_persistent_save(state, str(path))
    assert path.read_bytes() == before
    assert (tmp_path / "checkpoint_last.pt.tmp").exists()
    monkeypatch.undo()
    checkpoint_utils.torch_persistent_save(state, str(path))
    assert not (tmp_path / "checkpoint_last.pt.tmp").exists()
    assert _load(path)["extra_state"]["train_iterator"]["iterations_in_epoch"] == SAVE_EVERY


def test_copy_to_checkpoint_last_is_atomic(reference, tmp_path, monkeypatch):
    from fairseq.file_io import PathManager

    import fairseq_weam  # noqa: F401  (whatever the plugin installs)

    src = reference[1] / f"checkpoint_1_{SAVE_EVERY}.pt"
    dst = tmp_path / "checkpoint_last.pt"
    shutil.copyfile(reference[1] / "checkpoint1.pt", dst)
    before = dst.read_bytes()

    def dies_halfway(a, b, *args, **kwargs):
        data = open(a, "rb").read()
        with open(b, "wb") as f:
            f.write(data[: len(data) // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr(shutil, "copyfile", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        PathManager.copy(str(src), str(dst), overwrite=True)
    assert dst.read_bytes() == before


# ---------------------------------------------------------------------------------------------
# Data-loader workers: fresh masks every epoch, and exact resume across an epoch boundary


def spy_masks(data, save_dir, spy_file, *extra):
    """Train with the criterion spy; return {(stream, id): [masked positions per epoch]}."""
    args = train_args(data, save_dir, *extra)
    cmd = [os.path.join(os.path.dirname(args[0]), "python"), os.path.join(REPO, "tests", "spy_train.py"), *args[1:]]
    env = dict(train_env(), WEAM_SPY_FILE=str(spy_file))
    proc = subprocess.run(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO, env=env, timeout=300
    )
    assert proc.returncode == 0 or "done training" in proc.stdout, proc.stdout[-3000:]
    seen = {}
    with open(spy_file) as f:
        for line in f:
            r = json.loads(line)
            seen.setdefault((r["stream"], r["id"]), []).append(r["masked"])
    return seen


def test_masks_change_every_epoch_with_data_loader_workers(data, tmp_path):
    # 416 pairs in batches of 16: 26 updates an epoch; 3 epochs. One worker process, which
    # fairseq would keep across epochs if the iterator were reusable.
    with_worker = spy_masks(data, tmp_path / "w1", tmp_path / "w1.jsonl", "--max-epoch", 3, "--num-workers", 1)
    in_process = spy_masks(data, tmp_path / "w0", tmp_path / "w0.jsonl", "--max-epoch", 3, "--num-workers", 0)
    assert len(with_worker) == 416 and all(len(v) == 3 for v in with_worker.values())
    # Same masks with or without the worker (a function of seed, stream, epoch, index) ...
    assert with_worker == in_process
    # ... and fresh each epoch (the synthetic pairs are short, so some coincide by chance;
    # with masks frozen in the worker none would differ).
    for a, b in ((0, 1), (1, 2)):
        changed = sum(v[a] != v[b] for v in with_worker.values())
        assert changed > 0.75 * 416, (a, b, changed)


def test_resume_with_workers_across_an_epoch_boundary(data, reference, tmp_path):
    """Interrupted mid-epoch 1 and resumed, both with a data-loader worker: epoch 2 (new masks,
    built by new worker processes) matches the uninterrupted in-process reference."""
    ref_log, _ = reference
    save = tmp_path / "run"
    check_partial_log(ref_log, interrupt(data, save, signal.SIGINT, SAVE_EVERY + 3, "--num-workers", 1))
    _, resumed = run_train(data, save, "--max-update", MAX_UPDATE, *COMMON, "--num-workers", 1)
    _, epoch, start = loaded_from(resumed)
    assert epoch == 1 and start < updates_per_epoch(ref_log) < MAX_UPDATE
    assert_continues_reference(ref_log, resumed, start)
