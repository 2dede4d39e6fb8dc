"""Statistics behind the report: seed mean ± std, a deterministic bootstrap interval over
questions (and seeds), a paired bootstrap interval of a difference — its outcomes joined by
question id, never by position — and the proxy A-distance between two feature sets.

>>> import numpy as np
>>> c = np.array([[1, 0, 1, 1], [1, 1, 0, 1]])  # (seeds, questions)
>>> lo, hi = bootstrap_ci(c, samples=500, seed=0)
>>> bool(lo <= c.mean() <= hi)
True
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from prada.errors import ReportError

logger = logging.getLogger(__name__)

BOOTSTRAP_SEED = 0
"""Fixed seed of every bootstrap: the same files always give the same intervals."""

PAD_SEED = 0
"""Fixed seed of the PAD subsampling and train/test split."""


def mean_std(values: list[float] | np.ndarray) -> tuple[float, float | None]:
    """Mean and sample standard deviation (``ddof=1``) over seeds; std is ``None`` for one seed."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        raise ValueError("mean_std of no values")
    std = float(arr.std(ddof=1)) if arr.size > 1 else None
    return float(arr.mean()), std


@dataclass(frozen=True)
class QuestionOutcomes:
    """One evaluation's 0/1 outcomes, keyed by question id.

    ``label`` names the evaluation in error messages (e.g. ``prada-seed0/addsub``).

    >>> o = QuestionOutcomes("m/t", ("q2", "q1"), np.array([1.0, 0.0]))
    >>> o.in_order(("q1", "q2")).tolist()
    [0.0, 1.0]
    """

    label: str
    ids: tuple[str, ...]
    correct: np.ndarray
    """(N,) 0/1 floats; ``correct[j]`` is the outcome of question ``ids[j]``."""

    def __post_init__(self) -> None:
        if len(self.ids) != len(self.correct):
            raise ReportError(f"{self.label}: {len(self.ids)} question ids but {len(self.correct)} outcomes")
        if len(set(self.ids)) != len(self.ids):
            dupes = sorted(qid for qid, count in Counter(self.ids).items() if count > 1)
            raise ReportError(f"{self.label}: duplicate question ids {dupes[:5]}; outcomes cannot be joined by id")

    def in_order(self, ids: Sequence[str]) -> np.ndarray:
        """The outcomes of ``ids`` in that order (every id must be one of ``self.ids``)."""
        pos = {qid: j for j, qid in enumerate(self.ids)}
        return self.correct[[pos[q] for q in ids]]


def _describe_difference(a: QuestionOutcomes, b: QuestionOutcomes) -> str:
    only_a, only_b = sorted(set(a.ids) - set(b.ids)), sorted(set(b.ids) - set(a.ids))
    parts = []
    if only_a:
        parts.append(f"{len(only_a)} only in {a.label} (e.g. {', '.join(only_a[:3])})")
    if only_b:
        parts.append(f"{len(only_b)} only in {b.label} (e.g. {', '.join(only_b[:3])})")
    return "; ".join(parts)


def paired_matrices(
    baseline: Sequence[QuestionOutcomes | None],
    method: Sequence[QuestionOutcomes | None],
    *,
    what: str = "paired comparison",
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Join two models' per-seed outcomes on one task by question id.

    Returns ``(a, b, ids)``: ``a`` is ``(S_a, N)``, ``b`` is ``(S_b, N)``, and column ``j`` of both
    is question ``ids[j]`` (ids sorted, so the result does not depend on file order). Raises
    ``ReportError`` when an evaluation has no per-question outcomes (``None``) or when the
    evaluations did not answer the same set of questions: a paired interval over different
    questions would be wrong, and no outcome vector is ever made up.

    >>> a = QuestionOutcomes("ft_cot-seed0/t", ("q1", "q2"), np.array([1.0, 0.0]))
    >>> b = QuestionOutcomes("prada-seed0/t", ("q2", "q1"), np.array([1.0, 1.0]))
    >>> paired_matrices([a], [b])[1].tolist()
    [[1.0, 1.0]]
    """
    evals = [*baseline, *method]
    if not baseline or not method:
        raise ReportError(f"{what}: both models need at least one evaluation")
    missing = [i for i, e in enumerate(evals) if e is None]
    if missing:
        raise ReportError(
            f"{what}: {len(missing)} of the {len(evals)} evaluations have no per-question outcomes "
            "(metrics.json 'per_question' or predictions.jsonl); a paired interval needs them — "
            "re-run the evaluation to record them"
        )
    present = [e for e in evals if e is not None]
    reference = present[0]
    for other in present[1:]:
        if set(other.ids) != set(reference.ids):
            raise ReportError(
                f"{what}: {reference.label} and {other.label} answered different questions "
                f"({_describe_difference(reference, other)}); a paired interval needs the same "
                "question ids on both sides — evaluate both models on the same split and subset"
            )
    ids = tuple(sorted(reference.ids))
    if not ids:
        raise ReportError(f"{what}: {reference.label} has no questions")
    stack = [e.in_order(ids) for e in present]
    return np.stack(stack[: len(baseline)]), np.stack(stack[len(baseline):]), ids


def bootstrap_ci(
    correct: np.ndarray | list[np.ndarray],
    *,
    samples: int = 1000,
    level: float = 0.95,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """Percentile bootstrap interval of mean accuracy over questions and seeds.

    ``correct`` is a 0/1 matrix ``(S, N)``: S seeds (independently trained models) evaluated on
    the same N questions, columns aligned by question (the caller joins them by id). Each
    replicate resamples the seeds with replacement *and* the questions with replacement (one
    question resample shared by all seeds, because the questions are the same items), then takes
    the mean over the resampled cells. With one seed this is the plain question bootstrap. A
    *list* of 1-D arrays (seeds evaluated on different questions, or whose alignment is unknown)
    resamples each seed's questions independently, whatever their lengths. The generator is
    seeded, so the interval is a pure function of the inputs.
    """
    if isinstance(correct, np.ndarray):
        rows = [np.asarray(r, dtype=np.float64) for r in np.atleast_2d(correct)]
        aligned = True
    else:
        rows = [np.asarray(r, dtype=np.float64).ravel() for r in correct]
        aligned = len(rows) == 1
    if not rows or any(r.size == 0 for r in rows):
        return float("nan"), float("nan")
    n_seeds = len(rows)
    rng = np.random.default_rng(seed)
    seed_idx = rng.integers(0, n_seeds, size=(samples, n_seeds)) if n_seeds > 1 else None
    if aligned:
        q_idx = rng.integers(0, rows[0].size, size=(samples, rows[0].size))
        per_seed = np.stack([r[q_idx].mean(axis=1) for r in rows], axis=1)  # (samples, S)
    else:
        per_seed = np.stack(
            [r[rng.integers(0, r.size, size=(samples, r.size))].mean(axis=1) for r in rows], axis=1
        )
    return _percentile_interval(per_seed, seed_idx, level)


def bootstrap_ci_from_counts(
    counts: Sequence[tuple[int, int]],
    *,
    samples: int = 1000,
    level: float = 0.95,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """The bootstrap interval of mean accuracy when only ``(correct, n)`` per seed is known.

    Resampling n questions with replacement from a seed with k correct draws Binomial(n, k/n)
    correct answers, so this is the question bootstrap of each seed, exactly, without inventing
    which questions were right; seeds are resampled with replacement. Seeds' questions are drawn
    independently (which questions they share is unknown).

    >>> bootstrap_ci_from_counts([(10, 10)])
    (1.0, 1.0)
    """
    counts = [(int(k), int(n)) for k, n in counts]
    if not counts or any(n <= 0 or not 0 <= k <= n for k, n in counts):
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    seed_idx = rng.integers(0, len(counts), size=(samples, len(counts))) if len(counts) > 1 else None
    per_seed = np.stack([rng.binomial(n, k / n, size=samples) / n for k, n in counts], axis=1)  # (samples, S)
    return _percentile_interval(per_seed, seed_idx, level)


def _percentile_interval(per_seed: np.ndarray, seed_idx: np.ndarray | None, level: float) -> tuple[float, float]:
    """Mean over (resampled) seeds of each replicate's per-seed accuracy, then the percentiles."""
    if seed_idx is not None:
        stats = np.take_along_axis(per_seed, seed_idx, axis=1).mean(axis=1)
    else:
        stats = per_seed[:, 0]
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(stats, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def bootstrap_diff_ci(
    baseline: Sequence[Sequence[QuestionOutcomes | None]],
    method: Sequence[Sequence[QuestionOutcomes | None]],
    *,
    samples: int = 1000,
    level: float = 0.95,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """Percentile bootstrap interval of (method − baseline) accuracy, averaged over tasks.

    ``baseline[k]`` / ``method[k]`` hold task k's evaluations, one per seed. The two sides of a task
    are joined by question id (``paired_matrices``: a ``ReportError`` when they answered different
    questions or lack per-question outcomes), so the file order of the questions does not matter.
    Each replicate resamples every task's questions once (shared by both models: a paired
    comparison) and each model's seeds with replacement, then averages the per-task differences.
    With one task this is the interval of that task's difference.
    """
    if not baseline or len(baseline) != len(method):
        raise ReportError(
            f"paired comparison: {len(baseline)} baseline task(s) vs {len(method)} method task(s); "
            "give both models' evaluations for the same tasks"
        )
    matrices = [paired_matrices(a, b)[:2] for a, b in zip(baseline, method, strict=True)]
    return _bootstrap_diff_aligned(matrices, samples=samples, level=level, seed=seed)


def _bootstrap_diff_aligned(
    matrices: Sequence[tuple[np.ndarray, np.ndarray]], *, samples: int, level: float, seed: int
) -> tuple[float, float]:
    """The paired bootstrap over ``(a, b)`` matrices ``(S_a, N_k)`` / ``(S_b, N_k)`` whose columns
    are already joined by question id."""
    rng = np.random.default_rng(seed)
    diffs = np.zeros(samples)
    for a, b in matrices:
        q_idx = rng.integers(0, a.shape[1], size=(samples, a.shape[1]))  # (samples, N)
        means = []
        for m in (a, b):
            per_seed = np.stack([row[q_idx].mean(axis=1) for row in m], axis=1)  # (samples, S)
            s_idx = rng.integers(0, m.shape[0], size=(samples, m.shape[0]))
            means.append(np.take_along_axis(per_seed, s_idx, axis=1).mean(axis=1))
        diffs += means[1] - means[0]
    diffs /= len(matrices)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(diffs, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


@dataclass(frozen=True)
class PadResult:
    pad: float
    """2(1 − 2ε); ≈ 2 for separable domains, ≈ 0 (noise around it) for indistinguishable ones."""
    error: float
    """ε, the held-out error of the domain classifier."""
    n_per_domain: int


def proxy_a_distance(
    source: np.ndarray,
    target: np.ndarray,
    *,
    max_per_domain: int | None = 200,
    seed: int = PAD_SEED,
) -> PadResult:
    """Proxy A-distance (Ben-David et al. 2007; Ganin et al. 2016) between two feature sets.

    Both sets are subsampled to the same size (the smaller one, capped by ``max_per_domain``), so
    that chance error is 0.5. The pooled set is split 50/50 (stratified), features are
    standardised on the train half, and an L2-regularised logistic regression (C chosen from
    {0.01, 0.1, 1, 10} by 3-fold cross-validation on the train half) predicts the domain. ε is its
    error on the test half; PAD = 2(1 − 2ε). Not clipped: slightly negative values mean the
    domains are indistinguishable.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if source.ndim != 2 or target.ndim != 2 or source.shape[1] != target.shape[1]:
        raise ValueError(f"feature shapes differ: {source.shape} vs {target.shape}")
    rng = np.random.default_rng(seed)
    n = min(len(source), len(target))
    if max_per_domain is not None:
        n = min(n, max_per_domain)
    if n < 4:
        raise ValueError(f"proxy A-distance needs at least 4 examples per domain, got {n}")
    xs = source[np.sort(rng.choice(len(source), size=n, replace=False))]
    xt = target[np.sort(rng.choice(len(target), size=n, replace=False))]
    x = np.concatenate([xs, xt])
    y = np.concatenate([np.zeros(n, dtype=int), np.ones(n, dtype=int)])
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.5, stratify=y, random_state=seed)
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    folds = min(3, int(np.bincount(y_tr).min()))
    if folds >= 2:
        model = GridSearchCV(
            pipe,
            {"logisticregression__C": [0.01, 0.1, 1.0, 10.0]},
            cv=StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed),
        )
    else:
        model = pipe
    # Small problems: one BLAS/OpenMP thread is fastest, and avoids oversubscribing a shared CPU.
    with threadpool_limits(limits=1):
        model.fit(x_tr, y_tr)
        error = float((model.predict(x_te) != y_te).mean())
    return PadResult(pad=2.0 * (1.0 - 2.0 * error), error=error, n_per_domain=n)
