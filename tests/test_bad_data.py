"""Bad WEAM data gives a clear error naming the file (and line), through the task and fairseq-train."""

import os
import shutil

import pytest
import torch
from e2e import fairseq_train
from fairseq.data import indexed_dataset
from synthetic_corpus import build_raw, preprocess

from fairseq_weam.core.errors import WeamDataError
from fairseq_weam.tasks.weam import WeamConfig, WeamTask


@pytest.fixture(scope="module")
def good_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_data")
    build_raw(root / "raw", n_train=50, n_valid=10)
    preprocess(root / "raw", root / "bin")
    return root / "bin"


@pytest.fixture
def data(good_data, tmp_path):
    copy = tmp_path / "bin"
    shutil.copytree(good_data, copy)
    return copy


def load(data_dir, split="train"):
    cfg = WeamConfig(data=str(data_dir), seed=1, train_subset="train", dataset_impl=None)
    task = WeamTask.setup_task(cfg)
    task.load_dataset(split)
    return task.dataset(split)


def write_alignments(prefix, rows):
    """Binarize alignment rows the way fairseq-preprocess --align-suffix does."""
    builder = indexed_dataset.make_builder(str(prefix) + ".bin", impl="mmap", vocab_size=None)
    for links in rows:
        builder.add_item(torch.IntTensor([i for link in links for i in link]))
    builder.finalize(str(prefix) + ".idx")


def test_good_data_loads(data):
    ds = load(data)
    assert len(ds) == 50
    item = ds[0]
    assert item["source"].shape == item["target"].shape == item["xl_target"].shape[:1]
    assert item["xl_target"].shape == item["xl_weight"].shape


def test_missing_alignment_file(data):
    os.remove(data / "train.align.xx-yy.bin")
    with pytest.raises(WeamDataError, match=r"missing data file: .*train\.align\.xx-yy\.bin"):
        load(data)


def test_alignment_count_mismatch(data):
    write_alignments(data / "train.align.xx-yy", [[(0, 0)]] * 49)
    with pytest.raises(
        WeamDataError, match=r"train\.align\.xx-yy has 49 alignment lines but .*train\.xx-yy\.xx has 50"
    ):
        load(data)


def test_link_out_of_range(data):
    src = indexed_dataset.MMapIndexedDataset(str(data / "train.xx-yy.xx"))
    rows = [[(0, 0)] for _ in range(50)]
    too_far = int(src.sizes[6]) - 1  # sentence 7 has sizes[6] - 1 tokens (eos excluded)
    rows[6] = [(0, 0), (too_far, 0)]
    write_alignments(data / "train.align.xx-yy", rows)
    with pytest.raises(
        WeamDataError, match=rf"train\.align\.xx-yy\.bin: line 7: alignment link {too_far}-0 out of range"
    ):
        load(data)


def test_missing_data_dir_and_unknown_cap(tmp_path, data):
    with pytest.raises(WeamDataError, match="data directory not found"):
        WeamTask.setup_task(WeamConfig(data=str(tmp_path / "nope")))
    with pytest.raises(ValueError, match="unknown streams"):
        WeamTask.setup_task(WeamConfig(data=str(data), lang_caps="xx-qq:5"))


def test_fairseq_train_reports_the_file(data, tmp_path):
    os.remove(data / "valid.align.xx-yy.idx")
    proc, _ = fairseq_train(data, tmp_path / "ckpt", max_update=1, check=False)
    assert proc.returncode != 0
    assert "fairseq-train: error: missing data file:" in proc.output and "Traceback" not in proc.output
    assert str(data / "valid.align.xx-yy") in proc.output
