"""--subsample: the kept pairs are a fixed, nested subset of the stream (same across seeds and
objectives, of the stated size), only the training split shrinks, and a bad value stops
fairseq-train with one line naming the flag (exit 2) before any training."""

import hashlib
import os
import re

import numpy as np
import pytest
from e2e import fairseq_train
from eval_fixtures import build_multilingual

from fairseq_weam.data.subsample import (
    SubsampleError,
    kept_count,
    parse_subsample,
    resolve_subsample,
    stream_seed,
    subsample_indices,
)
from fairseq_weam.tasks.weam import WeamConfig, WeamTask

LADDER = (1.0, 0.3, 0.1, 0.03, 0.01)


def test_kept_count_rounds_half_up():
    # floor(f * n + 0.5): 0.25 * 10 = 2.5 -> 3 (numpy's round would give 2), 0.05 * 10 = 0.5 -> 1.
    assert [kept_count(10, f) for f in (1.0, 0.25, 0.15, 0.05, 0.04)] == [10, 3, 2, 1, 0]
    assert [kept_count(9599, f) for f in (0.3, 0.1, 0.03)] == [2880, 960, 288]


def test_subset_is_fixed_nested_and_of_the_stated_size():
    n = 2000
    subsets = {f: subsample_indices("en-el", n, f) for f in LADDER}
    for f, keep in subsets.items():
        assert len(keep) == kept_count(n, f) and np.all(np.diff(keep) > 0)  # sorted, no repeats
        assert 0 <= keep.min() and keep.max() < n
    for big, small in zip(LADDER, LADDER[1:]):
        assert set(subsets[small]) < set(subsets[big])  # the 1 % inside the 3 % inside the 10 % ...
    # The same call gives the same pairs, whatever numpy's global random state.
    np.random.seed(123)
    np.random.rand(10)
    assert np.array_equal(subsample_indices("en-el", n, 0.1), subsets[0.1])
    # It is a prefix of one permutation seeded by the stream name: hand-check the 1 % sample.
    order = np.random.default_rng(stream_seed("en-el")).permutation(n)
    assert np.array_equal(subsets[0.01], np.sort(order[:20]))
    assert stream_seed("en-el") == int.from_bytes(hashlib.sha256(b"en-el").digest()[:8], "little")
    # Another stream of the same size gets another subset.
    assert not np.array_equal(subsample_indices("en-de", n, 0.1), subsets[0.1])


def test_names_and_errors():
    streams = ["en-de", "en-el", "el"]
    assert parse_subsample("el:0.1, en-de:1") == [("el", 0.1), ("en-de", 1.0)]
    # A language names its pairs and its monolingual stream; a pair name only that pair.
    assert resolve_subsample("el:0.1", streams) == {"en-el": 0.1, "el": 0.1}
    assert resolve_subsample("en-el:0.3", streams) == {"en-el": 0.3}
    for spec, message in [
        ("xx:0.1", "no training stream for 'xx'"),
        ("el:0", r"must be in \(0, 1\], got 0"),
        ("el:1.5", r"must be in \(0, 1\], got 1.5"),
        ("el:-0.1", r"must be in \(0, 1\]"),
        ("el:abc", "is not a number"),
        ("el", "is not LANG:FRACTION"),
        ("en:0.5", "en is on a side of every pair; name pairs instead"),
        ("el:0.1,en-el:0.2", "stream en-el is named twice"),
        ("el:0.1,el:0.2", "el given twice"),
    ]:
        with pytest.raises(SubsampleError, match=message) as e:
            resolve_subsample(spec, streams)
        assert str(e.value).startswith("--subsample: ") and "\n" not in str(e.value)
    with pytest.raises(SubsampleError, match=r"--subsample: en-sw:0.01 keeps no pair of 24.*0.0208"):
        subsample_indices("en-sw", 24, 0.01)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    data, _, _ = build_multilingual(str(tmp_path_factory.mktemp("subsample")), sizes={"aa": 120, "bb": 40})
    return data


def kept_sources(data, seed, objective, subsample="aa:0.25", split="train"):
    """The source sentences (as token tuples) of stream en-aa that the task trains on."""
    cfg = WeamConfig(
        data=data, subsample=subsample, seed=seed, bitext_objective=objective, train_subset="train", dataset_impl=None
    )
    task = WeamTask.setup_task(cfg)
    task.load_dataset(split)
    stream = task.dataset(split).datasets[task.stream_names.index("en-aa")]
    return [tuple(stream.src[i].tolist()) for i in range(len(stream))], task


def test_task_trains_on_the_same_subset_across_seeds_and_objectives(data, caplog):
    from fairseq.data import data_utils

    full = data_utils.load_indexed_dataset(os.path.join(data, "train.en-aa.en"), None)
    expected = [tuple(full[int(i)].tolist()) for i in subsample_indices("en-aa", 120, 0.25)]
    assert len(expected) == 30
    with caplog.at_level("INFO"):
        first, task = kept_sources(data, 1, "weam")
    assert first == expected
    assert kept_sources(data, 2, "weam")[0] == expected  # another training seed
    assert kept_sources(data, 7, "tlm")[0] == expected  # another objective
    # The other stream is whole, and the share table shows the kept pairs.
    assert len(task.dataset("train").datasets[task.stream_names.index("en-bb")]) == 40
    table = next(r.getMessage() for r in caplog.records if "training streams" in r.getMessage())
    assert next(l for l in table.splitlines() if l.startswith("en-aa")).split()[1] == "30"
    assert "en-aa: 30 of 120 training pairs kept (--subsample 0.25)" in table
    # Valid sets never change.
    valid, _ = kept_sources(data, 1, "weam", split="valid")
    assert len(valid) == 10


@pytest.mark.parametrize(
    "spec, message",
    [
        ("cc:0.5", "--subsample: no training stream for 'cc'"),
        ("aa:1.5", r"--subsample: 'aa:1.5': the fraction must be in \(0, 1\]"),
        ("bb:0.01", "--subsample: en-bb:0.01 keeps no pair of 40"),
    ],
)
def test_fairseq_train_stops_with_one_line(data, tmp_path, spec, message):
    run, records = fairseq_train(data, tmp_path / "ckpt", "--subsample", spec, max_update=2, check=False)
    assert run.returncode == 2, run.output[-3000:]
    errors = [l for l in run.output.splitlines() if "error" in l.lower()]
    assert len(errors) == 1 and re.search(message, errors[0]) and errors[0].startswith("fairseq-train: error: ")
    assert "Traceback" not in run.output
    assert not any(r["_tag"].startswith("train") for r in records)  # stopped before any update
    assert "num. model params" not in run.output  # ... and before the model was built
