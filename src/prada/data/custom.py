"""A user's own dataset (``prada.config.CustomTaskConfig``) read from JSONL or a JSON list.

Each record needs a question and an answer (field names configurable); optional choices (a dict
``{"A": text}`` or a list of option texts, appended to the question as ``Answer Choices: (A) ...``)
and a gold rationale. Every problem names the file and line (JSONL) or item (JSON list).

    {"question": "Tom has 3 apples and buys 4 more. How many now?", "answer": "7"}
    {"question": "Which is a fruit?", "choices": ["rock", "pear"], "answer": "B"}
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

from prada.config import CustomTaskConfig
from prada.data.answers import normalise_answer
from prada.data.example import AnswerType, Category, Example
from prada.data.text import format_choices
from prada.errors import DataError
from prada.io import read_json

__all__ = ["read_custom_records", "load_custom_examples"]


def read_custom_records(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """``[(where, record)]`` from a JSONL file or a JSON list; ``where`` is ``path:line`` or
    ``path:item N`` for error messages."""
    if not path.is_file():
        raise DataError(f"{path}: custom dataset file not found")
    text_start = path.read_text(encoding="utf-8", errors="replace").lstrip()[:1]
    if text_start == "[":
        data = read_json(path)
        if not isinstance(data, list):
            raise DataError(f"{path}: expected a JSON list of objects")
        out = []
        for i, rec in enumerate(data):
            if not isinstance(rec, dict):
                raise DataError(f"{path}:item {i}: expected a JSON object, got {type(rec).__name__}")
            out.append((f"{path}:item {i}", rec))
        return out
    # JSONL: keep line numbers (blank lines are skipped but still counted)
    out = []
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw.decode("utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise DataError(f"{path}:{lineno}: malformed JSON ({e})") from None
            if not isinstance(rec, dict):
                raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(rec).__name__}")
            out.append((f"{path}:{lineno}", rec))
    return out


def _choices(value: Any, where: str, field: str) -> dict[str, str] | None:
    if value is None:
        return None
    if isinstance(value, dict):
        choices = {str(k).strip().upper(): str(v).strip() for k, v in value.items()}
    elif isinstance(value, list):
        if len(value) > 26:
            raise DataError(f"{where}: '{field}' has {len(value)} options (at most 26)")
        choices = {string.ascii_uppercase[i]: str(v).strip() for i, v in enumerate(value)}
    else:
        raise DataError(f"{where}: '{field}' must be a dict {{\"A\": text}} or a list of texts")
    return choices or None


def load_custom_examples(cfg: CustomTaskConfig, base_dir: Path | None = None) -> list[Example]:
    """All examples of a custom task, in file order (ids ``{name}/{index}``)."""
    if not cfg.name:
        raise DataError("data.custom_tasks: every custom task needs a 'name'")
    if not cfg.path:
        raise DataError(f"custom task '{cfg.name}': 'path' is empty")
    path = Path(cfg.path).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    answer_type = AnswerType(cfg.answer_type)
    try:
        category = Category(cfg.category)
    except ValueError:
        category = Category.CUSTOM
    out: list[Example] = []
    for i, (where, rec) in enumerate(read_custom_records(path)):
        for need in (cfg.question_field, cfg.answer_field):
            if need not in rec or rec[need] is None or str(rec[need]).strip() == "":
                raise DataError(f"{where}: missing field '{need}' (custom task '{cfg.name}')")
        question = str(rec[cfg.question_field]).strip()
        raw_answer = str(rec[cfg.answer_field]).strip()
        choices = _choices(rec.get(cfg.choices_field), where, cfg.choices_field) if cfg.choices_field else None
        if choices:
            question = f"{question} {format_choices(choices)}"
        if answer_type is AnswerType.CHOICE:
            if not choices:
                raise DataError(f"{where}: answer_type 'choice' needs '{cfg.choices_field}'")
            answer = normalise_answer(raw_answer, answer_type)
            if answer not in choices:  # the answer may be written as the option text
                by_text = [k for k, v in choices.items() if v.casefold() == raw_answer.casefold()]
                if not by_text:
                    raise DataError(f"{where}: answer {raw_answer!r} is neither a choice letter "
                                    f"{list(choices)} nor an option text")
                answer = by_text[0]
        else:
            answer = raw_answer if answer_type is AnswerType.STRING else normalise_answer(raw_answer, answer_type)
            if answer is None or (answer_type is AnswerType.YES_NO and answer not in ("yes", "no")):
                raise DataError(f"{where}: answer {raw_answer!r} is not a valid {answer_type.value} answer")
        rationale = rec.get(cfg.rationale_field) if cfg.rationale_field else None
        out.append(Example(
            id=f"{cfg.name}/{i}", dataset=cfg.name, category=category, answer_type=answer_type,
            question=question, answer=answer, choices=choices,
            rationale=str(rationale).strip() if rationale not in (None, "") else None,
        ))
    if not out:
        raise DataError(f"{path}: custom task '{cfg.name}' has no examples")
    return out
