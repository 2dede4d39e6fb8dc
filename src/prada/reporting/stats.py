"""Statistics behind the report: seed mean ± std, a deterministic bootstrap interval over
questions (and seeds), and the proxy A-distance between two feature sets.

>>> import numpy as np
>>> c = np.array([[1, 0, 1, 1], [1, 1, 0, 1]])  # (seeds, questions)
>>> lo, hi = bootstrap_ci(c, samples=500, seed=0)
>>> bool(lo <= c.mean() <= hi)
True
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

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


def bootstrap_ci(
    correct: np.ndarray | list[np.ndarray],
    *,
    samples: int = 1000,
    level: float = 0.95,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """Percentile bootstrap interval of mean accuracy over questions and seeds.

    ``correct`` is a 0/1 matrix ``(S, N)``: S seeds (independently trained models) evaluated on
    the same N questions, in the same order. Each replicate resamples the seeds with replacement
    *and* the questions with replacement (one question resample shared by all seeds, because the
    questions are the same items), then takes the mean over the resampled cells. With one seed
    this is the plain question bootstrap. A list of 1-D arrays of different lengths (seeds
    evaluated on different questions) resamples each seed's questions independently. The generator
    is seeded, so the interval is a pure function of the inputs.
    """
    if isinstance(correct, np.ndarray):
        rows = [np.asarray(r, dtype=np.float64) for r in np.atleast_2d(correct)]
    else:
        rows = [np.asarray(r, dtype=np.float64).ravel() for r in correct]
    if not rows or any(r.size == 0 for r in rows):
        return float("nan"), float("nan")
    n_seeds = len(rows)
    paired = len({r.size for r in rows}) == 1
    rng = np.random.default_rng(seed)
    seed_idx = rng.integers(0, n_seeds, size=(samples, n_seeds)) if n_seeds > 1 else None
    if paired:
        q_idx = rng.integers(0, rows[0].size, size=(samples, rows[0].size))
        per_seed = np.stack([r[q_idx].mean(axis=1) for r in rows], axis=1)  # (samples, S)
    else:
        per_seed = np.stack(
            [r[rng.integers(0, r.size, size=(samples, r.size))].mean(axis=1) for r in rows], axis=1
        )
    if seed_idx is not None:
        stats = np.take_along_axis(per_seed, seed_idx, axis=1).mean(axis=1)
    else:
        stats = per_seed[:, 0]
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(stats, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def bootstrap_diff_ci(
    baseline: list[np.ndarray],
    method: list[np.ndarray],
    *,
    samples: int = 1000,
    level: float = 0.95,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """Percentile bootstrap interval of (method − baseline) accuracy, averaged over tasks.

    ``baseline[k]`` and ``method[k]`` are 0/1 matrices ``(S, N_k)`` for task k, columns aligned on
    the same N_k questions. Each replicate resamples every task's questions once (shared by both
    models: a paired comparison) and each model's seeds with replacement, then averages the per-task
    differences. With one task this is the interval of that task's difference.
    """
    if not baseline or len(baseline) != len(method):
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    diffs = np.zeros(samples)
    for a, b in zip(baseline, method, strict=True):
        a, b = np.atleast_2d(np.asarray(a, np.float64)), np.atleast_2d(np.asarray(b, np.float64))
        if a.shape[1] != b.shape[1] or a.shape[1] == 0:
            return float("nan"), float("nan")
        q_idx = rng.integers(0, a.shape[1], size=(samples, a.shape[1]))  # (samples, N)
        means = []
        for m in (a, b):
            per_seed = np.stack([row[q_idx].mean(axis=1) for row in m], axis=1)  # (samples, S)
            s_idx = rng.integers(0, m.shape[0], size=(samples, m.shape[0]))
            means.append(np.take_along_axis(per_seed, s_idx, axis=1).mean(axis=1))
        diffs += means[1] - means[0]
    diffs /= len(baseline)
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
