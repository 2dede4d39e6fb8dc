from __future__ import annotations

import numpy as np
import pytest

from prada.errors import ReportError
from prada.reporting.stats import (
    QuestionOutcomes,
    bootstrap_ci,
    bootstrap_ci_from_counts,
    bootstrap_diff_ci,
    mean_std,
    paired_matrices,
    proxy_a_distance,
)


def outcomes(label: str, matrix: np.ndarray, ids: list[str] | None = None) -> list[QuestionOutcomes]:
    """One ``QuestionOutcomes`` per row (seed) of a (S, N) matrix, ids ``q0..q{N-1}`` by default."""
    matrix = np.atleast_2d(np.asarray(matrix, dtype=float))
    ids = ids or [f"q{j}" for j in range(matrix.shape[1])]
    return [QuestionOutcomes(f"{label}-seed{s}", tuple(ids), row) for s, row in enumerate(matrix)]


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
    assert bootstrap_diff_ci([outcomes("a", a)], [outcomes("a", a)]) == (0.0, 0.0)
    # Always right vs always wrong: exactly +1 whatever the resample.
    assert bootstrap_diff_ci([outcomes("a", np.zeros((2, 30)))], [outcomes("b", np.ones((3, 30)))]) == (1.0, 1.0)
    # Pairing: flipping 10 of 40 answers from wrong to right gives +0.25 on the full sample, and the
    # interval is tight around it because the other 30 questions cancel question by question.
    b = a.copy()
    wrong = np.flatnonzero(a[0] == 0)[:10]
    b[0, wrong] = 1.0
    lo, hi = bootstrap_diff_ci([outcomes("a", a)], [outcomes("b", b)], samples=2000)
    assert lo <= 0.25 <= hi and lo > 0.1 and hi < 0.4


def test_paired_difference_averages_tasks() -> None:
    lo, hi = bootstrap_diff_ci([outcomes("a", np.zeros((1, 10))), outcomes("a", np.zeros((1, 20)))],
                               [outcomes("b", np.ones((1, 10))), outcomes("b", np.zeros((1, 20)))])
    assert (lo, hi) == (0.5, 0.5)  # +1 on one task, 0 on the other


def test_pairing_refuses_different_question_sets() -> None:
    a = outcomes("ft_cot", np.zeros((1, 10)))
    b = outcomes("prada", np.ones((1, 10)), ids=[f"q{j}" for j in range(1, 11)])  # q10 instead of q0
    with pytest.raises(ReportError, match=r"answered different questions .*1 only in ft_cot-seed0 \(e\.g\. q0\)"):
        bootstrap_diff_ci([a], [b])
    # Equal lengths are not enough: the same count of questions, but not the same questions.
    with pytest.raises(ReportError, match="q10"):
        paired_matrices(a, b)
    # One seed of a model evaluated on other questions than its other seed is refused as well.
    mixed = [*outcomes("prada", np.ones((1, 10))), *b]
    with pytest.raises(ReportError, match="different questions"):
        paired_matrices(a, mixed)


def test_pairing_refuses_missing_outcomes_and_duplicates() -> None:
    a = outcomes("ft_cot", np.zeros((1, 10)))
    with pytest.raises(ReportError, match="no per-question outcomes"):
        bootstrap_diff_ci([a], [[None]])
    with pytest.raises(ReportError, match="duplicate question ids"):
        QuestionOutcomes("x/t", ("q1", "q1"), np.array([1.0, 0.0]))
    with pytest.raises(ReportError, match="2 question ids but 3 outcomes"):
        QuestionOutcomes("x/t", ("q1", "q2"), np.array([1.0, 0.0, 1.0]))
    with pytest.raises(ReportError, match="1 baseline task"):
        bootstrap_diff_ci([a], [])


def test_pairing_by_id_ignores_question_order() -> None:
    """Two evaluations that list the same questions in different orders give exactly the interval
    of the aligned order (and a naive positional pairing would not)."""
    rng = np.random.default_rng(3)
    ids = [f"multiarith/{j}" for j in range(60)]
    a = (rng.random((2, 60)) < 0.4).astype(float)
    b = np.clip(a + (rng.random((2, 60)) < 0.3), 0, 1)
    aligned = bootstrap_diff_ci([outcomes("ft_cot", a, ids)], [outcomes("prada", b, ids)], samples=800)
    perm = rng.permutation(60)
    shuffled_b = outcomes("prada", b[:, perm], [ids[j] for j in perm])
    assert bootstrap_diff_ci([outcomes("ft_cot", a, ids)], [shuffled_b], samples=800) == aligned
    positional = bootstrap_diff_ci([outcomes("ft_cot", a, ids)], [outcomes("prada", b[:, perm], ids)], samples=800)
    assert positional != aligned


def test_count_bootstrap_matches_the_question_bootstrap() -> None:
    """Without per-question outcomes the interval comes from (correct, n) alone: Binomial draws
    are the question bootstrap of a proportion, so its width is the normal interval's."""
    lo, hi = bootstrap_ci_from_counts([(25, 50)], samples=2000)
    assert lo <= 0.5 <= hi
    assert abs((hi - lo) / 2 - 1.96 * np.sqrt(0.25 / 50)) < 0.04
    assert bootstrap_ci_from_counts([(0, 10), (0, 20)]) == (0.0, 0.0)
    assert np.isnan(bootstrap_ci_from_counts([(3, 0)])[0])
