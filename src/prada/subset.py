"""The one seeded subset: which ``k`` of a list of examples a stage uses.

Teacher (``data.max_source_examples``), training (``data.max_target_examples``), evaluation
(``eval.max_examples``) and feature extraction (``report.feature_examples``) all draw through
``seeded_subset``; each passes its own seed key, so the subsets they drew before this helper existed
(and that committed results depend on) are unchanged:

==========================  ==============================================  ==============
caller                      seed key                                        order
==========================  ==============================================  ==============
teacher source questions    ``"prada-teacher-subset/{task}/{data.seed}"``   input order
training target questions   ``"{data.seed}/targets/{task}"``                input order
evaluated questions         ``eval.seed`` (an int: same for every task)     input order
feature questions (runner)  ``eval.seed`` (an int: same for every task)     order drawn
==========================  ==============================================  ==============

A string key is hashed with SHA-512 by CPython's ``random.seed``: the subset is identical on every
machine and Python version.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def seeded_subset(items: Sequence[T], k: int | None, seed: int | str, *, keep_order: bool = True) -> list[T]:
    """``k`` items drawn by ``random.Random(seed)``; all of them when ``k`` is None or at least
    ``len(items)``. ``keep_order``: in the input order (default), else in the order drawn.

    >>> seeded_subset("abcdefgh", 3, "demo") == seeded_subset("abcdefgh", 3, "demo")
    True
    >>> seeded_subset("abcdefgh", 3, 0), seeded_subset("abcdefgh", 3, 0, keep_order=False)
    (['d', 'g', 'h'], ['g', 'h', 'd'])
    >>> seeded_subset([1, 2], None, 0), seeded_subset([1, 2], 5, 0)
    ([1, 2], [1, 2])
    """
    items = list(items)
    if k is None or k >= len(items):
        return items
    if k < 1:
        raise ValueError(f"a subset needs k >= 1, got {k}")
    drawn = random.Random(seed).sample(range(len(items)), k)
    return [items[i] for i in (sorted(drawn) if keep_order else drawn)]
