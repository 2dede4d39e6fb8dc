"""Train/test/val splits that are identical on every machine.

- Fine-tune-CoT's published splits (``finetune_cot/split/<name>__default.json``) are indices into
  that project's unified lists (``finetune_cot/dataset/<name>.json``); ``map_to_finetune_cot`` finds
  each list position's example in the original files by normalised question text (and answer, to
  tell duplicated questions apart), and refuses to go on if any position is unmatched.
- Seeded splits use ``random.Random`` seeded with a string (seeded through SHA-512 by CPython, so
  never dependent on ``PYTHONHASHSEED`` or the platform), never Python's ``hash()``.
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from prada.data.answers import is_correct
from prada.data.example import AnswerType, Example
from prada.data.text import normalise_question, split_choices
from prada.errors import DataError
from prada.io import read_json

logger = logging.getLogger(__name__)

T = TypeVar("T")

__all__ = ["seeded_split", "carve_validation", "map_to_finetune_cot", "finetune_cot_split"]


def seeded_split(items: Sequence[T], test_fraction: float, seed: int, salt: str) -> dict[str, list[T]]:
    """A seeded random split ``{"train": [...], "test": [...]}``; both keep the input order.

    >>> s = seeded_split(list(range(10)), 0.3, seed=0, salt="demo")
    >>> len(s["train"]), len(s["test"]), s == seeded_split(list(range(10)), 0.3, seed=0, salt="demo")
    (7, 3, True)
    """
    if not 0.0 < test_fraction < 1.0:
        raise DataError(f"{salt}: test_fraction must be in (0, 1), got {test_fraction}")
    n = len(items)
    n_test = min(max(round(n * test_fraction), 1 if n > 1 else 0), max(n - 1, 0))
    test_idx = set(random.Random(f"prada-split/{salt}/{seed}").sample(range(n), n_test))
    return {
        "train": [x for i, x in enumerate(items) if i not in test_idx],
        "test": [x for i, x in enumerate(items) if i in test_idx],
    }


def carve_validation(train: Sequence[T], val_fraction: float, seed: int, salt: str) -> tuple[list[T], list[T]]:
    """Split a seeded validation subset off ``train``: returns ``(train_rest, val)``."""
    if val_fraction <= 0.0:
        return list(train), []
    if val_fraction >= 1.0:
        raise DataError(f"data.val_fraction must be in [0, 1), got {val_fraction}")
    n = len(train)
    n_val = min(max(round(n * val_fraction), 1), max(n - 1, 0))
    val_idx = set(random.Random(f"prada-val/{salt}/{seed}").sample(range(n), n_val))
    return ([x for i, x in enumerate(train) if i not in val_idx],
            [x for i, x in enumerate(train) if i in val_idx])


def _same_answer(example: Example, ft_question: str, ft_answer: Any) -> bool:
    """Does the unified-list answer agree with ours? Letters compare by option text."""
    ans = str(ft_answer).strip()
    if example.answer_type is AnswerType.CHOICE and example.choices:
        _, ft_choices = split_choices(ft_question)
        if ft_choices and ans in ft_choices:
            ours = example.choices.get(example.answer, "")
            return ours.strip().rstrip(".").casefold() == ft_choices[ans].strip().rstrip(".").casefold()
    return is_correct(ans, example.answer, example.answer_type)


def map_to_finetune_cot(examples: Sequence[Example], ft_path: Path) -> list[Example]:
    """Our examples in the order of Fine-tune-CoT's unified list at ``ft_path``.

    Raises ``DataError`` when the sizes differ or a list position has no example with the same
    normalised question.
    """
    ft_list = read_json(ft_path)
    if not isinstance(ft_list, list):
        raise DataError(f"{ft_path}: expected a JSON list of {{question, answer}} objects")
    if len(ft_list) != len(examples):
        raise DataError(
            f"{ft_path}: {len(ft_list)} items, but the original files have {len(examples)} "
            "examples: the data directory does not hold matching copies"
        )
    by_key: dict[str, list[Example]] = defaultdict(list)
    for ex in examples:
        by_key[normalise_question(ex.question)].append(ex)
    ordered: list[Example] = []
    disagreements = 0
    for j, item in enumerate(ft_list):
        if not isinstance(item, dict) or "question" not in item:
            raise DataError(f"{ft_path}: item {j}: missing field 'question'")
        pool = by_key.get(normalise_question(str(item["question"])))
        if not pool:
            raise DataError(
                f"{ft_path}: item {j} ({str(item['question'])[:60]!r}...) matches no question of "
                "the original files"
            )
        # Duplicated questions (MultiArith has some): prefer the copy whose answer agrees.
        pick = next((k for k, ex in enumerate(pool)
                     if _same_answer(ex, str(item["question"]), item.get("answer"))), None)
        if pick is None:
            disagreements += 1
            pick = 0
        ordered.append(pool.pop(pick))
    if disagreements:
        logger.warning("%s: %d items whose answer differs from the original files (kept the "
                       "original files' gold)", ft_path, disagreements)
    return ordered


def finetune_cot_split(examples: Sequence[Example], ft_path: Path, split_path: Path) -> dict[str, list[Example]]:
    """Fine-tune-CoT's published ``{"train", "test"}`` split of ``examples``."""
    ordered = map_to_finetune_cot(examples, ft_path)
    raw = read_json(split_path)
    if not isinstance(raw, dict) or not {"train", "test"} <= set(raw):
        raise DataError(f"{split_path}: expected an object with 'train' and 'test' index lists")
    out: dict[str, list[Example]] = {}
    seen: set[int] = set()
    for part in ("train", "test"):
        idx = raw[part]
        if not isinstance(idx, list) or not all(isinstance(i, int) for i in idx):
            raise DataError(f"{split_path}: '{part}' must be a list of integer indices")
        bad = [i for i in idx if not 0 <= i < len(ordered)]
        if bad:
            raise DataError(f"{split_path}: '{part}' index {bad[0]} is outside 0..{len(ordered) - 1}")
        overlap = seen.intersection(idx)
        if overlap:
            raise DataError(f"{split_path}: index {min(overlap)} is in both train and test")
        seen.update(idx)
        out[part] = [ordered[i] for i in idx]
    return out
