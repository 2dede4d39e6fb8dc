"""A user's own dataset (``prada.config.CustomTaskConfig``) read from JSONL or a JSON list.

Each record needs a question and an answer (field names configurable); optional choices (a dict
``{"A": text}`` or a list of option texts, appended to the question as ``Answer Choices: (A) ...``)
and a gold rationale. Every problem names the file and line (JSONL) or item (JSON list).

A dataset is untrusted input: every field must have its JSON type (the question a string, the
answer a string or a number, the rationale a string or null, each option a string or a number),
and a numeric answer is read exactly (``prada.data.number_format``: ``.5``, ``−5``, ``1/2``,
``1e3``, ``1,000``, ``1,5`` ...) or refused with the reason, never rewritten into another number.

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
from prada.data.number_format import NumberFormatError, canonical_number, parse_exact_number
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


def _scalar_text(value: Any, where: str, field: str, what: str) -> str:
    """A string field, or a number written as JSON (``7``, ``2.5``); anything else is refused."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise DataError(f"{where}: '{field}' must be {what}, got {type(value).__name__} {json.dumps(value)[:80]}")


def _choices(value: Any, where: str, field: str) -> dict[str, str] | None:
    if value is None:
        return None
    if isinstance(value, dict):
        items = [(str(k).strip().upper(), v) for k, v in value.items()]
    elif isinstance(value, list):
        if len(value) > 26:
            raise DataError(f"{where}: '{field}' has {len(value)} options (at most 26)")
        items = list(zip(string.ascii_uppercase, value))
    else:
        raise DataError(f"{where}: '{field}' must be a dict {{\"A\": text}} or a list of texts")
    choices = {key: _scalar_text(text, where, f"{field}.{key}", "a text") for key, text in items}
    return choices or None


def _number_answer(raw_answer: str, where: str) -> str:
    try:
        return canonical_number(parse_exact_number(raw_answer))
    except NumberFormatError as e:
        raise DataError(f"{where}: answer {e}; write it as e.g. 1000, -2.5, 0.5, 1/2 or 1e3 "
                        "(see docs/data.md, numeric answers)") from None


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
        if not isinstance(rec[cfg.question_field], str):
            value = rec[cfg.question_field]
            raise DataError(f"{where}: '{cfg.question_field}' must be a string, got {type(value).__name__} "
                            f"{json.dumps(value)[:80]}")
        question = rec[cfg.question_field].strip()
        raw_answer = _scalar_text(rec[cfg.answer_field], where, cfg.answer_field, "a string or a number")
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
        elif answer_type is AnswerType.NUMBER:
            answer = _number_answer(raw_answer, where)
        else:
            answer = raw_answer if answer_type is AnswerType.STRING else normalise_answer(raw_answer, answer_type)
            if answer is None or (answer_type is AnswerType.YES_NO and answer not in ("yes", "no")):
                raise DataError(f"{where}: answer {raw_answer!r} is not a valid {answer_type.value} answer")
        rationale = rec.get(cfg.rationale_field) if cfg.rationale_field else None
        if rationale is not None and not isinstance(rationale, str):
            raise DataError(f"{where}: '{cfg.rationale_field}' must be a string or null, got "
                            f"{type(rationale).__name__}")
        out.append(Example(
            id=f"{cfg.name}/{i}", dataset=cfg.name, category=category, answer_type=answer_type,
            question=question, answer=answer, choices=choices,
            rationale=str(rationale).strip() if rationale not in (None, "") else None,
        ))
    if not out:
        raise DataError(f"{path}: custom task '{cfg.name}' has no examples")
    return out
