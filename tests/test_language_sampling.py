"""Temperature sampling probabilities, resampled epochs and caps."""

import numpy as np
import pytest
import torch
from fairseq.data import ResamplingDataset

from fairseq_weam.data.language_sampling import (
    Cap,
    IndexSubsetDataset,
    cap_indices,
    parse_caps,
    resampling_ratios,
    sampling_table,
    temperature_probs,
)


def test_temperature_probs_exact():
    sizes = [900, 90, 10]
    assert temperature_probs(sizes, 1.0) == pytest.approx([0.9, 0.09, 0.01])
    assert temperature_probs(sizes, 0.0) == pytest.approx([1 / 3, 1 / 3, 1 / 3])
    q = np.array([0.9, 0.09, 0.01]) ** 0.5
    assert temperature_probs(sizes, 0.5) == pytest.approx(q / q.sum())
    # Empty streams are never sampled, even at alpha 0.
    assert temperature_probs([10, 0, 30], 0.0) == pytest.approx([0.5, 0.0, 0.5])
    with pytest.raises(ValueError):
        temperature_probs([0, 0], 1.0)
    with pytest.raises(ValueError):
        temperature_probs([1, 2], -0.1)


def test_resampling_ratios_keep_total_size():
    sizes = np.array([900, 90, 10])
    r = resampling_ratios(sizes, 0.3)
    assert (r * sizes).sum() == pytest.approx(sizes.sum())
    assert r[0] < 1 < r[2]
    assert (r * sizes / sizes.sum()) == pytest.approx(temperature_probs(sizes, 0.3))


class Items(torch.utils.data.Dataset):
    def __init__(self, n, stream):
        self.sizes = np.full(n, 3)
        self.stream = stream

    def __getitem__(self, i):
        return self.stream

    def __len__(self):
        return len(self.sizes)

    def set_epoch(self, epoch):
        pass


def test_resampled_epoch_composition_matches_target_shares():
    sizes = [6000, 600, 60]
    alpha = 0.3
    ratios = resampling_ratios(sizes, alpha)
    target = temperature_probs(sizes, alpha)
    for epoch in (1, 2):
        streams = [
            ResamplingDataset(Items(n, k), size_ratio=r, seed=1, epoch=epoch, replace=r >= 1.0)
            for k, (n, r) in enumerate(zip(sizes, ratios))
        ]
        counts = np.array([len(ds) for ds in streams], dtype=float)
        shares = counts / counts.sum()
        assert shares == pytest.approx(target, abs=2e-3)
        # Items really come from their own stream, and the big one is sampled without repeats.
        assert all(streams[k][0] == k for k in range(3))
        assert len(set(streams[0]._cur_indices.array.tolist())) == len(streams[0])


def test_epochs_draw_different_samples():
    a = ResamplingDataset(Items(1000, 0), size_ratio=0.1, seed=1, epoch=1, replace=False)
    first = a._cur_indices.array.copy()
    a.set_epoch(2)
    assert not np.array_equal(first, a._cur_indices.array)


def test_caps():
    assert parse_caps("en-sw:200, en-fr:5000tok,de:7") == {
        "en-sw": Cap(200, "examples"),
        "en-fr": Cap(5000, "tokens"),
        "de": Cap(7, "examples"),
    }
    for bad in ("en-sw", "en-sw:abc", ":5", "en-sw:5k"):
        with pytest.raises(ValueError):
            parse_caps(bad)
    sizes = np.array([5, 5, 5, 5, 5, 5, 5, 5])
    keep = cap_indices(sizes, Cap(3, "examples"), seed=1)
    assert len(keep) == 3 and np.all(np.diff(keep) > 0)
    assert np.array_equal(keep, cap_indices(sizes, Cap(3, "examples"), seed=1))
    keep_tok = cap_indices(sizes, Cap(12, "tokens"), seed=1)
    assert len(keep_tok) == 2  # 5 + 5 <= 12 < 15


def test_index_subset_and_table():
    base = Items(10, 0)
    base.sizes = np.arange(10)
    sub = IndexSubsetDataset(base, np.array([2, 5]))
    assert len(sub) == 2 and sub.sizes.tolist() == [2, 5] and sub.num_tokens(1) == 5
    table = sampling_table(["en-fr", "en-sw"], [90, 10], [900, 100], [0.75, 0.25], [75, 25])
    lines = table.splitlines()
    assert lines[1].split() == ["en-fr", "90", "900", "90.00", "75.00", "75"]
    assert lines[2].split() == ["en-sw", "10", "100", "10.00", "25.00", "25"]
