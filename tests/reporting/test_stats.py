from __future__ import annotations

import numpy as np
import pytest

from prada.reporting.stats import bootstrap_ci, bootstrap_diff_ci, mean_std, proxy_a_distance


def test_mean_std_sample_std() -> None:
    assert mean_std([10.0, 20.0, 30.0]) == (20.0, 10.0)
    assert mean_std([42.0]) == (42.0, None)


def test_bootstrap_is_deterministic_and_contains_the_mean() -> None:
    rng = np.random.default_rng(1)
    c = (rng.random((3, 50)) < 0.4).astype(float)
    a = bootstrap_ci(c, samples=800)
    b = bootstrap_ci(c, samples=800)
    assert a == b
    assert a[0] <= c.mean() <= a[1]
    assert a[0] < a[1]


def test_bootstrap_single_seed_and_unpaired() -> None:
    v = np.array([1, 0] * 25, dtype=float)
    lo, hi = bootstrap_ci(v, samples=500)
    assert lo <= 0.5 <= hi
    # Plain question bootstrap of a proportion: width close to the normal interval's ±1.96·sqrt(p(1-p)/n).
    assert abs((hi - lo) / 2 - 1.96 * np.sqrt(0.25 / 50)) < 0.04
    lo2, hi2 = bootstrap_ci([v, np.ones(10)], samples=500)
    assert lo2 <= (0.5 + 1.0) / 2 <= hi2
    assert bootstrap_ci(np.ones((2, 10)), samples=100) == (1.0, 1.0)


def test_pad_separable_is_about_two() -> None:
    rng = np.random.default_rng(0)
    res = proxy_a_distance(rng.normal(size=(200, 8)), rng.normal(size=(200, 8)) + 10.0)
    assert res.pad == pytest.approx(2.0, abs=0.05)
    assert res.error < 0.02


def test_pad_identical_distributions_is_about_zero() -> None:
    rng = np.random.default_rng(0)
    res = proxy_a_distance(rng.normal(size=(200, 8)), rng.normal(size=(200, 8)))
    assert abs(res.pad) < 0.4
    assert res.n_per_domain == 200


def test_pad_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="shapes"):
        proxy_a_distance(np.zeros((10, 3)), np.zeros((10, 4)))


def test_paired_difference_identities() -> None:
    rng = np.random.default_rng(1)
    a = (rng.random((1, 40)) < 0.5).astype(float)
    # A model against itself: every replicate differs by exactly 0.
    assert bootstrap_diff_ci([a], [a]) == (0.0, 0.0)
    # Always right vs always wrong: exactly +1 whatever the resample.
    assert bootstrap_diff_ci([np.zeros((2, 30))], [np.ones((3, 30))]) == (1.0, 1.0)
    # Pairing: flipping 10 of 40 answers from wrong to right gives +0.25 on the full sample, and the
    # interval is tight around it because the other 30 questions cancel question by question.
    b = a.copy()
    wrong = np.flatnonzero(a[0] == 0)[:10]
    b[0, wrong] = 1.0
    lo, hi = bootstrap_diff_ci([a], [b], samples=2000)
    assert lo <= 0.25 <= hi and lo > 0.1 and hi < 0.4


def test_paired_difference_averages_tasks_and_rejects_misaligned() -> None:
    lo, hi = bootstrap_diff_ci([np.zeros((1, 10)), np.zeros((1, 20))], [np.ones((1, 10)), np.zeros((1, 20))])
    assert (lo, hi) == (0.5, 0.5)  # +1 on one task, 0 on the other
    assert np.isnan(bootstrap_diff_ci([np.zeros((1, 10))], [np.zeros((1, 11))])[0])
