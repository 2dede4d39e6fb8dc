"""What one evaluation measured, as a typed result: ``evaluate_model()`` returns it and writes it,
versioned, to ``RUN_DIR/eval/{model}/{task}/metrics.json`` (last: its presence means done).

It lives outside ``prada.evaluation`` so that its readers (``prada status``, reports, sweeps) do not
import torch. Files written before the format existed (no ``format`` key) read as format 0; they
may lack the fields added since (``device``, ``dtype``, ...), which then read as None.

>>> m = EvalMetrics(task="addsub", n=4, correct=3, accuracy=0.75)
>>> EvalMetrics.from_json(m.to_json()) == m, m.to_json()["format"]
(True, 1)
>>> EvalMetrics.from_json({"task": "addsub", "n": 4, "correct": 3, "accuracy": 0.75}).format  # before versions
0
>>> EvalMetrics.from_json({"task": "addsub", "n": "4", "correct": 3, "accuracy": 0.75}, "m.json")
Traceback (most recent call last):
...
prada.errors.RunDirError: m.json: not the metrics of an evaluation (n: expected an integer, got '4'); delete it and run the same command again to re-evaluate that model
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prada.errors import RunDirError
from prada.io import read_json, write_json_atomic

EVAL_METRICS_FORMAT = 1
"""Version of ``metrics.json``; files written before it existed read as format 0."""

_REQUIRED = ("task", "n", "correct", "accuracy")
_FIX = "delete it and run the same command again to re-evaluate that model"


@dataclass(frozen=True)
class PerQuestion:
    """Per-question outcomes (question ids only, no dataset text): reports and their paired bootstrap
    intervals can be rebuilt from metrics files alone."""

    ids: list[Any]
    """Question ids in evaluation order (strings; some older files hold numbers)."""
    correct: list[int]
    """1 where the prediction was correct, else 0; aligned with ``ids``."""


@dataclass(frozen=True, kw_only=True)
class EvalMetrics:
    """One evaluation of one model on one task's split. Fields are in the order ``metrics.json``
    holds them; only ``task``, ``n``, ``correct`` and ``accuracy`` are in every file ever written."""

    task: str
    """The evaluated task."""
    split: str | None = None
    """The evaluated split (``eval.split``)."""
    n: int
    """Questions evaluated."""
    correct: int
    """Questions answered correctly."""
    accuracy: float
    """``correct / n``."""
    no_answer: int | None = None
    """Questions where no answer could be extracted."""
    model: str | None = None
    """The evaluated model: a checkpoint folder, a model alias or path."""
    method: str | None = None
    """The checkpoint's training method (None for an untrained model)."""
    step: int | None = None
    """The checkpoint's training step (None for an untrained model)."""
    prompt_style: str | None = None
    """``student``, ``answer_only`` or ``zero_shot_cot`` (``prada.formats.PROMPT_STYLES``)."""
    chat_template: bool | None = None
    """Whether the prompts went through the tokenizer's chat template."""
    backend: str | None = None
    """The generation backend (``hf``, ``vllm``)."""
    device: str | None = None
    """Where the ``hf`` backend generated (None under vLLM, and in older files)."""
    dtype: str | None = None
    """The weights' format while generating (None under vLLM, and in older files)."""
    batch_size: int | None = None
    """``eval.batch_size``."""
    max_new_tokens: int | None = None
    """``eval.max_new_tokens``."""
    max_examples: int | None = None
    """``eval.max_examples`` (None: the whole split)."""
    subset_seed: int | None = None
    """``eval.seed``: the seed of the ``max_examples`` subset."""
    generated_tokens: int | None = None
    """Tokens generated over all questions."""
    generation_s: float | None = None
    """Seconds spent generating."""
    tokens_per_s: float | None = None
    """``generated_tokens / generation_s``."""
    wall_s: float | None = None
    """Seconds of the whole evaluation (loading included)."""
    per_question: PerQuestion | None = None
    """Per-question outcomes (None in files that kept none)."""
    format: int = EVAL_METRICS_FORMAT
    """Version of the file this was read from (0: written before versions)."""

    def to_json(self) -> dict[str, Any]:
        """The data of ``metrics.json``, keys in field order."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, raw: Any, where: str = "metrics") -> EvalMetrics:
        """From ``metrics.json``'s data. Unknown keys are ignored, a missing ``format`` is 0; a missing
        required field or a value of the wrong type is one ``RunDirError`` naming ``where``."""
        if not isinstance(raw, dict):
            raise RunDirError(f"{where}: expected a JSON object, got {type(raw).__name__}; {_FIX}")
        problems = [f"no '{k}'" for k in _REQUIRED if k not in raw]
        values: dict[str, Any] = {"format": 0}
        for f in dataclasses.fields(cls):
            if f.name in raw and not problems:
                value, problem = _typed(f.name, raw[f.name])
                if problem:
                    problems.append(f"{f.name}: {problem}")
                values[f.name] = value
        if not problems and values["n"] <= 0:
            problems.append(f"n: {values['n']} must be > 0")
        if problems:
            raise RunDirError(f"{where}: not the metrics of an evaluation ({'; '.join(problems)}); {_FIX}")
        return cls(**values)

    @classmethod
    def read(cls, path: Path) -> EvalMetrics:
        return cls.from_json(read_json(path), str(path))

    def write(self, path: Path) -> None:
        write_json_atomic(path, self.to_json())


_TYPES: dict[str, type] = {"task": str, "split": str, "model": str, "method": str, "prompt_style": str,
                           "backend": str, "device": str, "dtype": str, "chat_template": bool,
                           "accuracy": float, "generation_s": float, "tokens_per_s": float, "wall_s": float}
"""Each field's type (the others are integers, and ``per_question``)."""


def _typed(name: str, value: Any) -> tuple[Any, str | None]:
    """``value`` as field ``name``'s type, and None; or the value and why it is not of that type."""
    if value is None:
        return value, ("must not be null" if name in _REQUIRED else None)
    if name == "per_question":
        if (isinstance(value, dict) and isinstance(value.get("ids"), list)
                and isinstance(value.get("correct"), list)):
            return PerQuestion(value["ids"], value["correct"]), None
        return value, "expected {\"ids\": [...], \"correct\": [...]}"
    tp = _TYPES.get(name, int)
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value, None  # an int stays an int: what is read is what was written
        return value, f"expected a number, got {value!r}"
    if tp is int and (isinstance(value, bool) or not isinstance(value, int)):
        return value, f"expected an integer, got {value!r}"
    if not isinstance(value, tp):
        return value, f"expected {'true/false' if tp is bool else 'a string'}, got {value!r}"
    return value, None
