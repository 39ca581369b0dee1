"""The statistics of the imbalance study against hand computations: seed mean/sd, bootstrap
intervals over held-out pairs (fixed seed), fair averages with the exclusion rule, the trend
of accuracy against log share, and the thirds."""

import math

import numpy as np
import pytest

from fairseq_weam.evaluation import retrieval, stats


def test_mean_sd_over_seeds():
    assert stats.mean_sd([0.20, 0.22, 0.27]) == pytest.approx((0.23, math.sqrt(13) / 100))
    mean, sd = stats.mean_sd([0.5])
    assert mean == 0.5 and math.isnan(sd)
    with pytest.raises(ValueError):
        stats.mean_sd([])


def test_bootstrap_interval_hand_cases():
    # [1, 0]: resampled means are 0, 0.5, 1 with probability 1/4, 1/2, 1/4: both tails hold
    # more than 2.5 %, so the 95 % interval is [0, 1].
    assert stats.bootstrap_interval([np.array([1, 0])]) == (0.0, 1.0)
    # [1, 1, 1, 0]: mean = k/4 with k ~ Binomial(4, 3/4); P(k = 0) = 1/256 < 2.5 % < P(k <= 1) =
    # 13/256, and P(k = 4) = 81/256 > 2.5 %: the interval is [0.25, 1].
    assert stats.bootstrap_interval([np.array([1, 1, 1, 0])]) == (0.25, 1.0)
    # Every pair right: no spread.
    assert stats.bootstrap_interval([np.ones(50)]) == (1.0, 1.0)


def test_bootstrap_interval_matches_the_normal_approximation():
    v = np.zeros(400)
    v[:200] = 1  # accuracy 0.5 on 400 pairs: sd of the mean 0.025, 95 % half-width 0.049
    lo, hi = stats.bootstrap_interval([v])
    assert lo == pytest.approx(0.5 - 1.96 * 0.025, abs=0.01) and hi == pytest.approx(0.5 + 1.96 * 0.025, abs=0.01)


def test_bootstrap_is_seeded_stratified_and_paired():
    rng = np.random.default_rng(0)
    a, b = (rng.integers(0, 2, 30).astype(float) for _ in range(2))
    c = rng.integers(0, 2, 7).astype(float)
    means = stats.bootstrap_means([a, c], n_boot=50, seed=3)
    # The documented rule: language j is resampled with default_rng([seed, j]), its own size.
    idx = np.random.default_rng([3, 1]).integers(0, 7, size=(50, 7))
    np.testing.assert_allclose(means[:, 1], c[idx].mean(1))
    np.testing.assert_array_equal(means, stats.bootstrap_means([a, c], n_boot=50, seed=3))
    assert not np.array_equal(means, stats.bootstrap_means([a, c], n_boot=50, seed=4))
    # Two runs on the same pairs are resampled identically: the bootstrap of the per-pair
    # difference is the difference of the bootstraps (a paired bootstrap).
    np.testing.assert_allclose(
        stats.bootstrap_means([a - b], 50, 3), stats.bootstrap_means([a], 50, 3) - stats.bootstrap_means([b], 50, 3)
    )
    # A statistic over languages: the macro average of two languages.
    lo, hi = stats.bootstrap_interval([a, c], lambda m: m.mean(1), n_boot=50, seed=3)
    assert (lo, hi) == pytest.approx(tuple(np.quantile(means.mean(1), [0.025, 0.975])))


def test_fair_average_exclusion_rule():
    acc = {"fr": 0.5, "de": 0.3, "sw": 1.0}
    n = {"fr": 500, "de": 100, "sw": 6}
    avg = stats.fair_average(acc, n, min_heldout=100)
    assert avg.macro == pytest.approx(0.4)  # (0.5 + 0.3) / 2; sw (n = 6 < 100) left out
    assert avg.pair_weighted == pytest.approx((250 + 30) / 600)
    assert avg.covered == ["fr", "de"] and avg.excluded == ["sw"]
    assert avg.describe() == "covers fr, de (>= 100 held-out pairs); leaves out sw"
    everything = stats.fair_average(acc, n, min_heldout=6)  # the boundary counts: n >= min
    assert everything.macro == pytest.approx(0.6) and everything.excluded == []
    none = stats.fair_average(acc, n, min_heldout=1000)
    assert none.macro is None and none.pair_weighted is None and none.excluded == ["fr", "de", "sw"]


def test_log_share_trend():
    slope, intercept = stats.log_share_trend([0.01, 0.1, 1.0], [0.1, 0.3, 0.5])
    assert slope == pytest.approx(0.2) and intercept == pytest.approx(0.5)  # +0.2 per tenfold share
    # Least squares, not a line through the ends: x = -2, -1, 0; y = 0, 0.3, 0.3.
    slope, intercept = stats.log_share_trend([0.01, 0.1, 1.0], [0.0, 0.3, 0.3])
    assert slope == pytest.approx(0.15) and intercept == pytest.approx(0.35)
    rows = stats.log_share_trend([0.01, 0.1, 1.0], np.array([[0.1, 0.3, 0.5], [0.0, 0.3, 0.3]]))[0]
    np.testing.assert_allclose(rows, [0.2, 0.15])
    with pytest.raises(ValueError):
        stats.log_share_trend([0.1, 0.1], [0.2, 0.3])


def test_thirds():
    shares = [0.24, 0.21, 0.20, 0.17, 0.092, 0.061, 0.016, 0.015]  # 8 languages: thirds of 3
    assert stats.thirds(shares) == ([5, 6, 7], [0, 1, 2])
    assert stats.thirds([0.5, 0.1, 0.3, 0.2]) == ([1], [0])  # round(4/3) = 1
    assert stats.thirds([0.3, 0.7]) == ([0], [1])


def test_per_pair_hits_round_trip_through_results():
    hits = {"margin": {"src2tgt": np.array([1, 0, 1, 1], bool), "tgt2src": np.array([0, 0, 1, 1], bool)}}
    r = retrieval.language_result(hits)
    assert r["n"] == 4 and r["correct"]["margin"] == {"src2tgt": "1011", "tgt2src": "0011"}
    assert r["margin"] == {"src2tgt": 0.75, "tgt2src": 0.5, "mean": 0.625}
    np.testing.assert_array_equal(retrieval.pair_scores(r, "margin", "mean"), [0.5, 0, 1, 1])
    np.testing.assert_array_equal(retrieval.pair_scores(r, "margin", "tgt2src"), [0, 0, 1, 1])
    assert retrieval.pair_scores({"n": 4, "margin": r["margin"]}, "margin") is None  # an old result


def test_retrieval_averages_and_table_mark_small_sets():
    def lang(n, k):  # k of n right in both directions, both methods
        v = np.arange(n) < k
        return retrieval.language_result({m: {"src2tgt": v, "tgt2src": v} for m in retrieval.METHODS})

    results = {"fr": lang(200, 100), "de": lang(100, 20), "sw": lang(6, 6)}
    avg = retrieval.averages(results, min_heldout=100)
    assert avg["covered"] == ["fr", "de"] and avg["excluded"] == ["sw"]
    assert avg["margin"]["src2tgt"]["macro"] == pytest.approx(0.35)  # (0.5 + 0.2) / 2
    assert avg["margin"]["mean"]["pair_weighted"] == pytest.approx(120 / 300)
    table = retrieval.format_table(results, min_heldout=100).splitlines()
    assert table[2].startswith("| de | 100 | 20.0 |") and table[4].startswith("| sw † | 6 | 100.0 |")
    assert table[5] == "| avg (2 langs) | 300 | 35.0 | 35.0 | 35.0 | 35.0 |"
    assert table[6] == "| avg (pairs) | 300 | 40.0 | 40.0 | 40.0 | 40.0 |"
    assert table[-1] == (
        "avg: language-macro and pair-weighted averages; covers fr, de (>= 100 held-out pairs); "
        "leaves out sw (marked †)."
    )
