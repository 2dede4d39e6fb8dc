"""The one record every stage passes around."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any


class AnswerType(str, Enum):
    """How a gold answer is written and compared."""

    NUMBER = "number"  # compared numerically: "1,000" == "1000.0" == "$1000"
    CHOICE = "choice"  # a letter among the example's choices: "A".."F"
    YES_NO = "yes_no"  # "yes" / "no"
    STRING = "string"  # exact match after normalisation (e.g. last-letter concatenation)


class Category(str, Enum):
    ARITHMETIC = "arithmetic"
    OTHER = "other"
    SYMBOLIC = "symbolic"
    COMMONSENSE = "commonsense"
    CUSTOM = "custom"


@dataclass(frozen=True)
class Example:
    """One question of a task.

    ``question`` is the text the student and teacher see; for multiple choice it already carries
    ``Answer Choices: (A) ... (B) ...`` as the published formats do, and ``choices`` keeps the
    letters and option texts separately.
    """

    id: str  # stable across machines, e.g. "multiarith/17" (index in the source list)
    dataset: str  # registry name of the task
    category: Category
    answer_type: AnswerType
    question: str
    answer: str  # gold, normalised: "39", "B", "yes", "ksea"
    choices: dict[str, str] | None = None  # {"A": "550", "B": "570", ...} for multiple choice
    rationale: str | None = None  # a gold rationale where the dataset has one (GSM8K, synthetic)
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["category"] = self.category.value
        d["answer_type"] = self.answer_type.value
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Example:
        d = dict(d)
        d["category"] = Category(d["category"])
        d["answer_type"] = AnswerType(d["answer_type"])
        return cls(**d)
