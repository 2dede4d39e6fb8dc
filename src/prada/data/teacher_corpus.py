"""Recorded teacher completions: ``<data_dir>/teacher/<teacher>/<method>/<task>.jsonl``.

One record per question (see ``shared/data/README.md``); the log order is shuffled, so records are
joined to a task's examples by ``normalise_question`` — never by index. Multiple-choice records may
list the options in another order than our copy (Date Understanding was shuffled when recorded):
``remap_choice`` translates a record's letter into an example's letter by option text.

>>> from prada.data.example import AnswerType, Category, Example
>>> ex = Example("d/0", "d", Category.OTHER, AnswerType.CHOICE, "Q? Answer Choices: (A) x (B) y", "B",
...              choices={"A": "x", "B": "y"})
>>> remap_choice("A", "Q? Answer Choices: (A) y (B) x", ex)
'B'
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prada.data.answers import extract_teacher_answer, is_correct
from prada.data.example import AnswerType, Example
from prada.data.tasks import BUILTIN_TASKS, get_task, resolve_data_dir
from prada.data.text import normalise_question, split_choices
from prada.errors import DataError
from prada.formats import ZERO_SHOT_PROMPT
from prada.io import iter_jsonl

logger = logging.getLogger(__name__)

__all__ = [
    "RECORD_FIELDS",
    "recorded_teacher_path",
    "load_recorded_teacher",
    "join_recorded_teacher",
    "JoinResult",
    "remap_choice",
    "score_recorded_teacher",
    "DatasetScore",
]

RECORD_FIELDS = ("question", "rationale", "answer_completion", "gold")
"""Fields every recorded line must have."""


def recorded_teacher_path(data_dir: str | Path | None, task: str, teacher: str = "text-davinci-002",
                          method: str = ZERO_SHOT_PROMPT) -> Path:
    """``<data_dir>/teacher/<teacher>/<method>/<task>.jsonl`` (the file must exist)."""
    root = resolve_data_dir(data_dir)
    folder = root / "teacher" / teacher / method
    if not folder.is_dir():
        raise DataError(f"{folder}: no recorded teacher '{teacher}' with method '{method}' "
                        f"(expected {root}/teacher/<teacher>/<method>/)")
    path = folder / f"{task}.jsonl"
    if not path.is_file():
        have = sorted(p.stem for p in folder.glob("*.jsonl"))
        raise DataError(f"{path}: no recorded completions for task '{task}' (recorded: {', '.join(have) or 'none'})")
    return path


def read_records(path: Path) -> list[dict[str, Any]]:
    """All records of a recorded-teacher file, each checked for ``RECORD_FIELDS``."""
    records = []
    for i, rec in enumerate(iter_jsonl(path)):
        missing = [k for k in RECORD_FIELDS if k not in rec]
        if missing:
            raise DataError(f"{path}: record {i + 1}: missing field(s) {missing}")
        records.append(rec)
    return records


def load_recorded_teacher(data_dir: str | Path | None, teacher: str = "text-davinci-002",
                          method: str = ZERO_SHOT_PROMPT, task: str = "multiarith") -> dict[str, dict[str, Any]]:
    """``{normalise_question(record["question"]): record}`` for one task's recorded completions.

    A question recorded twice keeps its first record (a warning says how many were dropped).
    """
    path = recorded_teacher_path(data_dir, task, teacher, method)
    out: dict[str, dict[str, Any]] = {}
    dupes = 0
    for rec in read_records(path):
        key = normalise_question(str(rec["question"]))
        if key in out:
            dupes += 1
            continue
        out[key] = rec
    if dupes:
        logger.warning("%s: %d duplicated questions (kept the first record of each)", path, dupes)
    return out


def remap_choice(letter: str | None, record_question: str, example: Example) -> str | None:
    """The example's letter for the option that ``letter`` names in ``record_question``."""
    if letter is None or not example.choices:
        return letter
    _, rec_choices = split_choices(record_question)
    if not rec_choices or letter not in rec_choices:
        return letter
    def key(text: str) -> str:
        return "".join(text.rstrip(". ").casefold().split())

    want = key(rec_choices[letter])
    if key(example.choices.get(letter, "")) == want:  # same letter first (options can repeat)
        return letter
    for ours, text in example.choices.items():
        if key(text) == want:
            return ours
    return None


@dataclass
class JoinResult:
    """Examples paired with their recorded record, and what could not be paired."""

    matched: list[tuple[Example, dict[str, Any]]] = field(default_factory=list)
    unmatched_examples: list[Example] = field(default_factory=list)
    unmatched_records: int = 0
    gold_disagreements: int = 0
    """Pairs whose record gold (mapped by option text for multiple choice) differs from ours."""


def join_recorded_teacher(examples: Sequence[Example], records: dict[str, dict[str, Any]]) -> JoinResult:
    """Pair each example with the record of the same normalised question."""
    result = JoinResult()
    used: set[str] = set()
    for ex in examples:
        key = normalise_question(ex.question)
        rec = records.get(key)
        if rec is None:
            result.unmatched_examples.append(ex)
            continue
        used.add(key)
        gold = str(rec["gold"])
        if ex.answer_type is AnswerType.CHOICE:
            gold = remap_choice(gold, str(rec["question"]), ex) or gold
        if not is_correct(gold, ex.answer, ex.answer_type):
            result.gold_disagreements += 1
        result.matched.append((ex, rec))
    result.unmatched_records = len(set(records) - used)
    return result


@dataclass
class DatasetScore:
    """Accuracy of a recorded teacher on one dataset (all its records, against each record's gold)."""

    task: str
    n: int
    correct_strict: int
    """Published Zero-Shot-CoT comparison: the extracted string equals the gold string."""
    correct: int
    """Ours: numbers compared numerically (|Δ| ≤ 1e-6), other types after normalisation."""
    no_answer: int
    differs_from_stored: int
    """Records whose re-extracted answer differs from the stored ``teacher_prediction``."""
    examples_matched: int | None = None
    examples_unmatched: int | None = None
    records_unmatched: int | None = None
    gold_disagreements: int | None = None

    @property
    def accuracy_strict(self) -> float:
        return 100.0 * self.correct_strict / self.n if self.n else 0.0

    @property
    def accuracy(self) -> float:
        return 100.0 * self.correct / self.n if self.n else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task, "n": self.n, "correct_strict": self.correct_strict,
            "accuracy_strict": round(self.accuracy_strict, 2), "correct": self.correct,
            "accuracy": round(self.accuracy, 2), "no_answer": self.no_answer,
            "differs_from_stored": self.differs_from_stored,
            "examples_matched": self.examples_matched, "examples_unmatched": self.examples_unmatched,
            "records_unmatched": self.records_unmatched, "gold_disagreements": self.gold_disagreements,
        }


def score_recorded_teacher(data_dir: str | Path | None, task: str, teacher: str = "text-davinci-002",
                           method: str = ZERO_SHOT_PROMPT, *, join: bool = True) -> DatasetScore:
    """Re-extract every record's answer from ``answer_completion`` and score it against the
    record's own gold; with ``join``, also pair the records with the task's examples (all splits)
    and count what did not pair."""
    if task not in BUILTIN_TASKS:
        raise DataError(f"'{task}' has no recorded teacher; recorded tasks: {', '.join(BUILTIN_TASKS)}")
    spec = BUILTIN_TASKS[task]
    path = recorded_teacher_path(data_dir, task, teacher, method)
    records = read_records(path)
    strict = correct = none = differs = 0
    for rec in records:
        pred = extract_teacher_answer(str(rec["answer_completion"]), spec.answer_type, spec.choice_letters)
        gold = str(rec["gold"])
        none += pred is None
        differs += (pred or "") != str(rec.get("teacher_prediction", pred or ""))
        strict += is_correct(pred, gold, spec.answer_type, strict=True)
        correct += is_correct(pred, gold, spec.answer_type)
    score = DatasetScore(task, len(records), strict, correct, none, differs)
    if join:
        t = get_task(task)
        examples = t.load("train", data_dir) + t.load("test", data_dir)
        by_q: dict[str, dict[str, Any]] = {}
        for rec in records:
            by_q.setdefault(normalise_question(str(rec["question"])), rec)
        j = join_recorded_teacher(examples, by_q)
        score.examples_matched = len(j.matched)
        score.examples_unmatched = len(j.unmatched_examples)
        score.records_unmatched = j.unmatched_records
        score.gold_disagreements = j.gold_disagreements
    return score
