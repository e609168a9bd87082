"""The scoring rules on hand-made cases: ties, voice-then-pair averaging, mean vs sum, CI and p-value."""

from __future__ import annotations

import math

import numpy as np
import pytest

from koe.eval.scoring import (
    binomial_pvalue,
    bootstrap_ci,
    contains_match,
    exact_match,
    group_accuracy,
    item_score,
    normalize_answer,
    side_score,
    summarize,
)


def test_side_score_mean_and_sum_can_disagree():
    short, long = np.array([-2.0]), np.array([-1.5, -1.5, -1.5])
    assert side_score(short, "mean") < side_score(long, "mean")  # -2 < -1.5
    assert side_score(short, "sum") > side_score(long, "sum")  # -2 > -4.5
    with pytest.raises(ValueError):
        side_score(short, "max")


def test_item_score_ties_and_ranking():
    assert item_score([-1.0, -2.0], 0) == 1.0
    assert item_score([-2.0, -1.0], 0) == 0.0
    assert item_score([-1.5, -1.5], 0) == 0.5
    assert item_score([-1.5, -1.5 + 1e-9], 0) == 0.5  # float noise is a tie
    assert item_score([-1.0, -1.0, -3.0, -4.0], 1) == 0.5  # two tied at the top, label among them
    assert item_score([-1.0, -1.0, -3.0, -4.0], 2) == 0.0
    assert item_score([-3.0, -1.0, -1.0, -1.0], 3) == pytest.approx(1 / 3)


def test_voices_are_averaged_within_a_pair_before_pairs_are_averaged():
    scored = [("p1", 1.0), ("p1", 1.0), ("p1", 0.0), ("p2", 0.0)]  # p1: 3 voices, p2: 1 voice
    groups = group_accuracy(scored)
    assert groups == {"p1": pytest.approx(2 / 3), "p2": 0.0}
    s = summarize(groups, {"p1": "a", "p2": "b"}, {"p1": 0.5, "p2": 0.5}, 200, 0.95, 0)
    assert s["accuracy"] == pytest.approx(1 / 3)  # not the item mean 0.5
    assert s["by_category"] == {"a": {"accuracy": pytest.approx(2 / 3), "num_groups": 1},
                                "b": {"accuracy": 0.0, "num_groups": 1}}


def test_bootstrap_ci_is_seeded_and_brackets_the_mean():
    rng = np.random.default_rng(1)
    values = rng.integers(0, 2, size=200).astype(float)
    lo, hi = bootstrap_ci(values, 500, 0.95, seed=3)
    assert lo < values.mean() < hi
    assert (lo, hi) == bootstrap_ci(values, 500, 0.95, seed=3)
    assert bootstrap_ci(np.ones(50), 100, 0.95, 0) == (1.0, 1.0)
    lo_small, hi_small = bootstrap_ci(values[:20], 500, 0.95, seed=3)
    assert hi_small - lo_small > hi - lo  # fewer groups, wider interval


def _numpy_percentile_bootstrap(values, num_resamples: int, confidence: float, seed: int) -> tuple[float, float]:
    """koe's former hand-written bootstrap: resample indices with the seeded generator, quantiles of the means."""
    x = np.asarray(values, dtype=np.float64)
    means = x[np.random.default_rng(seed).integers(0, len(x), size=(num_resamples, len(x)))].mean(axis=1)
    alpha = (1.0 - confidence) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


@pytest.mark.parametrize(("n", "seed"), [(2, 0), (7, 1), (57, 3), (400, 5)])
def test_scipy_bootstrap_gives_the_former_intervals_exactly(n, seed):
    """scipy.stats.bootstrap draws the same indices from the same generator, so the intervals in results.json stay
    those of the former hand-written code; they differ only in the last bits (scipy sums the resampled means in
    another order), hence rel=1e-12."""
    values = np.random.default_rng(seed + 100).random(n)
    for confidence in (0.9, 0.95):
        expected = _numpy_percentile_bootstrap(values, 1000, confidence, seed)
        assert bootstrap_ci(values, 1000, confidence, seed) == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert bootstrap_ci([0.25], 100, 0.95, 0) == (0.25, 0.25)
    assert all(np.isnan(bootstrap_ci([], 100, 0.95, 0)))


def _brute_two_sided(k: int, n: int, p: float) -> float:
    pmf = [math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(n + 1)]
    return min(1.0, sum(x for x in pmf if x <= pmf[k] * (1 + 1e-7)))


@pytest.mark.parametrize(("k", "n", "p"), [(7, 10, 0.5), (10, 10, 0.5), (5, 10, 0.5), (3, 20, 0.25), (12, 30, 0.25)])
def test_binomial_pvalue_matches_the_exact_sum(k, n, p):
    assert binomial_pvalue(k, n, p) == pytest.approx(_brute_two_sided(k, n, p), rel=1e-9)


def test_binomial_pvalue_known_values():
    assert binomial_pvalue(7, 10, 0.5) == pytest.approx(0.34375)
    assert binomial_pvalue(10, 10, 0.5) == pytest.approx(2 / 1024)
    assert binomial_pvalue(5, 10, 0.5) == pytest.approx(1.0)


def test_answer_normalisation_and_matches():
    assert normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
    assert exact_match("the Onion.", ["Onion", "Allium cepa"])
    assert not exact_match("red onion", ["Onion"])
    assert contains_match("it is a red onion", ["Onion"])
    assert not contains_match("onions", ["Onion"])
