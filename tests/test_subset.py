"""One seeded-subset helper: it draws exactly what each stage's own copy drew before it existed
(committed results depend on those selections)."""

from __future__ import annotations

import random

import pytest

from prada.subset import seeded_subset

ITEMS = [f"q{i}" for i in range(57)]


def _teacher_before(items, k, seed, task):
    keep = set(random.Random(f"prada-teacher-subset/{task}/{seed}").sample(range(len(items)), k))
    return [x for i, x in enumerate(items) if i in keep]


def _eval_before(items, k, seed):
    return [items[i] for i in sorted(random.Random(seed).sample(range(len(items)), k))]


def _targets_before(items, k, seed, task):
    return [items[i] for i in sorted(random.Random(f"{seed}/targets/{task}").sample(range(len(items)), k))]


def _features_before(items, k, seed):
    return random.Random(seed).sample(items, k)


@pytest.mark.parametrize("k", [1, 5, 20, 56])
@pytest.mark.parametrize("seed", [0, 3])
def test_each_stage_draws_what_it_drew_before(k, seed):
    from prada.evaluation.evaluate import select_examples
    from prada.teacher.generate import source_subset

    assert source_subset(ITEMS, k, seed, "multiarith") == _teacher_before(ITEMS, k, seed, "multiarith")
    assert select_examples(ITEMS, k, seed) == _eval_before(ITEMS, k, seed)
    assert seeded_subset(ITEMS, k, f"{seed}/targets/svamp") == _targets_before(ITEMS, k, seed, "svamp")
    assert seeded_subset(ITEMS, k, seed, keep_order=False) == _features_before(ITEMS, k, seed)


def test_all_items_when_k_is_none_or_large_and_k_below_one_is_refused():
    assert seeded_subset(ITEMS, None, 0) == ITEMS == seeded_subset(ITEMS, 57, 0) == seeded_subset(ITEMS, 99, 0)
    with pytest.raises(ValueError, match="k >= 1"):
        seeded_subset(ITEMS, 0, 0)
