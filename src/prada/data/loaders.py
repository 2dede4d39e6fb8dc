"""Readers of the 12 datasets' ORIGINAL files (a data directory laid out like ``shared/data/raw``).

Each reader returns ``{part: [Example, ...]}`` in file order, where ``part`` names the file the
examples came from (``"all"`` for single-file datasets, ``"train"``/``"test"`` for GSM8K,
``"dev"``/``"test"`` for AQuA, ``"train"``/``"dev"`` for CommonsenseQA). Questions are written
exactly as Zero-Shot-CoT (Kojima et al. 2022) writes them — the format of the recorded teacher and
of Fine-tune-CoT — and gold answers are normalised (``"43"``, not ``"43.0"``; no thousands commas).

Example ids are ``{task}/{index}`` (single file) or ``{task}/{part}/{index}``: the position in the
original file, so they are the same on every machine.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prada.data.example import AnswerType, Category, Example
from prada.data.text import format_choices
from prada.errors import DataError
from prada.io import iter_jsonl, read_json

__all__ = ["RAW_FILES", "READERS", "read_raw", "strip_gsm8k_calculator", "gsm8k_rationale"]

RAW_FILES: dict[str, tuple[str, ...]] = {
    "singleeq": ("raw/singleeq/questions.json",),
    "addsub": ("raw/addsub/AddSub.json",),
    "multiarith": ("raw/multiarith/MultiArith.json",),
    "gsm8k": ("raw/gsm8k/train.jsonl", "raw/gsm8k/test.jsonl"),
    "aqua": ("raw/aqua/dev.json", "raw/aqua/test.json"),
    "svamp": ("raw/svamp/SVAMP.json",),
    "date_understanding": ("raw/date_understanding/task.json",),
    "tracking_shuffled_objects": ("raw/tracking_shuffled_objects/task.json",),
    "last_letters": ("raw/last_letters/last_letters.json",),
    "coin_flip": ("raw/coin_flip/coin_flip.json",),
    "commonsense_qa": (
        "raw/commonsense_qa/train_rand_split.jsonl",
        "raw/commonsense_qa/dev_rand_split.jsonl",
    ),
    "strategy_qa": ("raw/strategy_qa/task.json",),
}
"""The original files each task reads, relative to the data directory."""

_CALC_RE = re.compile(r"<<[^>]*>>")


def _need(data_dir: Path, rel: str, task: str) -> Path:
    path = data_dir / rel
    if not path.is_file():
        raise DataError(
            f"{path}: file not found — task '{task}' needs it in the data directory {data_dir} "
            f"(laid out like shared/data: raw/{rel.split('/')[1]}/...)"
        )
    return path


def _field(record: Any, key: str, path: Path, where: str) -> Any:
    if not isinstance(record, dict) or key not in record:
        raise DataError(f"{path}:{where}: missing field '{key}'")
    return record[key]


def _number_text(value: Any) -> str:
    """Kojima's gold: ``str(x)`` with a trailing ``.0`` dropped; we also drop thousands commas."""
    s = str(value).strip().replace(",", "")
    return s[:-2] if s.endswith(".0") else s


def _make(task: str, category: Category, answer_type: AnswerType, idx: str, question: str,
          answer: str, **kw: Any) -> Example:
    return Example(id=f"{task}/{idx}", dataset=task, category=category, answer_type=answer_type,
                   question=question, answer=answer, **kw)


def _json_list(path: Path, key: str | None = None) -> list[Any]:
    data = read_json(path)
    if key is not None:
        if not isinstance(data, dict) or key not in data:
            raise DataError(f"{path}: expected a JSON object with a '{key}' list")
        data = data[key]
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON list of examples, got {type(data).__name__}")
    return data


# --------------------------------------------------------------------------------------------
# One reader per file format
# --------------------------------------------------------------------------------------------


def _read_math_word_problems(task: str) -> Callable[[Path], dict[str, list[Example]]]:
    """SingleEq, AddSub, MultiArith: ``[{"sQuestion", "lSolutions": [x]}]``."""

    def read(data_dir: Path) -> dict[str, list[Example]]:
        path = _need(data_dir, RAW_FILES[task][0], task)
        out = []
        for i, rec in enumerate(_json_list(path)):
            q = str(_field(rec, "sQuestion", path, f"item {i}")).strip()
            sols = _field(rec, "lSolutions", path, f"item {i}")
            if not isinstance(sols, list) or not sols:
                raise DataError(f"{path}:item {i}: 'lSolutions' must be a non-empty list")
            out.append(_make(task, Category.ARITHMETIC, AnswerType.NUMBER, str(i), q,
                             _number_text(sols[0])))
        return {"all": out}

    return read


def strip_gsm8k_calculator(text: str) -> str:
    """Remove GSM8K's calculator annotations: ``48/2 = <<48/2=24>>24`` -> ``48/2 = 24``."""
    return _CALC_RE.sub("", text)


def gsm8k_rationale(solution: str) -> str:
    """A GSM8K solution without ``<<...>>`` annotations and without its ``#### x`` line."""
    lines = [ln for ln in solution.split("\n") if not ln.lstrip().startswith("####")]
    return strip_gsm8k_calculator("\n".join(lines)).strip()


def _read_gsm8k(data_dir: Path) -> dict[str, list[Example]]:
    out: dict[str, list[Example]] = {}
    for rel in RAW_FILES["gsm8k"]:
        part = Path(rel).stem  # train / test
        path = _need(data_dir, rel, "gsm8k")
        items = []
        for i, rec in enumerate(iter_jsonl(path)):
            q = str(_field(rec, "question", path, f"record {i + 1}")).strip()
            solution = str(_field(rec, "answer", path, f"record {i + 1}"))
            if "#### " not in solution:
                raise DataError(f"{path}:record {i + 1}: the answer has no '#### ' gold marker")
            gold = _number_text(solution.split("#### ")[-1])
            items.append(_make("gsm8k", Category.ARITHMETIC, AnswerType.NUMBER, f"{part}/{i}", q,
                               gold, rationale=gsm8k_rationale(solution)))
        out[part] = items
    return out


def _read_aqua(data_dir: Path) -> dict[str, list[Example]]:
    out: dict[str, list[Example]] = {}
    for rel in RAW_FILES["aqua"]:
        part = Path(rel).stem  # dev / test
        path = _need(data_dir, rel, "aqua")
        items = []
        for i, rec in enumerate(iter_jsonl(path)):
            where = f"record {i + 1}"
            stem = str(_field(rec, "question", path, where)).strip()
            choices: dict[str, str] = {}
            for opt in _field(rec, "options", path, where):
                m = re.match(r"\s*([A-Z])\s*\)\s*(.*)", str(opt), re.DOTALL)
                if not m:
                    raise DataError(f"{path}:{where}: cannot read option {opt!r} (expected 'A)text')")
                choices[m.group(1)] = m.group(2).strip()
            gold = str(_field(rec, "correct", path, where)).strip()
            rationale = rec.get("rationale")
            items.append(_make("aqua", Category.ARITHMETIC, AnswerType.CHOICE, f"{part}/{i}",
                               f"{stem} {format_choices(choices)}", gold, choices=choices,
                               rationale=rationale.strip() if isinstance(rationale, str) else None))
        out[part] = items
    return out


def _read_svamp(data_dir: Path) -> dict[str, list[Example]]:
    path = _need(data_dir, RAW_FILES["svamp"][0], "svamp")
    out = []
    for i, rec in enumerate(_json_list(path)):
        where = f"item {i}"
        body = str(_field(rec, "Body", path, where)).strip()
        question = str(_field(rec, "Question", path, where)).strip()
        out.append(_make("svamp", Category.ARITHMETIC, AnswerType.NUMBER, str(i),
                         f"{body} {question}", _number_text(_field(rec, "Answer", path, where)),
                         meta={"svamp_id": rec.get("ID"), "type": rec.get("Type")}))
    return {"all": out}


def _stable_shuffle(items: list[Any], key: str) -> list[Any]:
    """A shuffle that depends only on ``key`` (sha256), identical on every machine."""
    seed = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big")
    items = list(items)
    random.Random(seed).shuffle(items)
    return items


def _read_bigbench_choice(task: str, category: Category, letters: str, shuffle: bool,
                          prefix: str) -> Callable[[Path], dict[str, list[Example]]]:
    """BIG-bench ``task.json`` with ``target_scores``: Date Understanding, Shuffled Objects."""

    def read(data_dir: Path) -> dict[str, list[Example]]:
        path = _need(data_dir, RAW_FILES[task][0], task)
        out = []
        for i, rec in enumerate(_json_list(path, "examples")):
            where = f"example {i}"
            q = str(_field(rec, "input", path, where)).strip()
            scores = _field(rec, "target_scores", path, where)
            options = list(scores.items())
            if shuffle:  # the original lists the right answer first; Kojima shuffles (unseeded)
                options = _stable_shuffle(options, f"{task}/{i}")
            if len(options) > len(letters):
                raise DataError(f"{path}:{where}: {len(options)} options, at most {len(letters)}")
            choices = {letters[k]: str(text).strip() for k, (text, _) in enumerate(options)}
            gold = [letters[k] for k, (_, score) in enumerate(options) if score == 1]
            if len(gold) != 1:
                raise DataError(f"{path}:{where}: expected exactly one option with score 1")
            question = f"{q} {prefix}{format_choices(choices)}"
            out.append(_make(task, category, AnswerType.CHOICE, str(i), question, gold[0],
                             choices=choices))
        return {"all": out}

    return read


def _read_examples_list(task: str, answer_type: AnswerType) -> Callable[[Path], dict[str, list[Example]]]:
    """Last Letters, Coin Flip: ``{"examples": [{"question", "answer"}]}``."""

    def read(data_dir: Path) -> dict[str, list[Example]]:
        path = _need(data_dir, RAW_FILES[task][0], task)
        out = []
        for i, rec in enumerate(_json_list(path, "examples")):
            q = str(_field(rec, "question", path, f"example {i}")).strip()
            a = str(_field(rec, "answer", path, f"example {i}")).strip()
            out.append(_make(task, Category.SYMBOLIC, answer_type, str(i), q,
                             a.lower() if answer_type is AnswerType.YES_NO else a))
        return {"all": out}

    return read


def _read_commonsense_qa(data_dir: Path) -> dict[str, list[Example]]:
    out: dict[str, list[Example]] = {}
    for rel in RAW_FILES["commonsense_qa"]:
        part = Path(rel).stem.split("_")[0]  # train / dev
        path = _need(data_dir, rel, "commonsense_qa")
        items = []
        for i, rec in enumerate(iter_jsonl(path)):
            where = f"record {i + 1}"
            qd = _field(rec, "question", path, where)
            stem = str(_field(qd, "stem", path, where)).strip()
            choices = {str(c["label"]): str(c["text"]).strip() for c in _field(qd, "choices", path, where)}
            gold = str(_field(rec, "answerKey", path, where)).strip()
            items.append(_make("commonsense_qa", Category.COMMONSENSE, AnswerType.CHOICE,
                               f"{part}/{i}", f"{stem} {format_choices(choices)}", gold,
                               choices=choices, meta={"csqa_id": rec.get("id")}))
        out[part] = items
    return out


def _read_strategy_qa(data_dir: Path) -> dict[str, list[Example]]:
    path = _need(data_dir, RAW_FILES["strategy_qa"][0], "strategy_qa")
    out = []
    for i, rec in enumerate(_json_list(path, "examples")):
        where = f"example {i}"
        q = str(_field(rec, "input", path, where)).strip()
        scores = _field(rec, "target_scores", path, where)
        if not isinstance(scores, dict) or "Yes" not in scores:
            raise DataError(f"{path}:{where}: 'target_scores' must have a 'Yes' entry")
        answer = "yes" if int(scores["Yes"]) == 1 else "no"
        target = rec.get("target")
        rationale = None
        if isinstance(target, str) and ". " in target:  # "Yes. <facts>": the facts are a rationale
            rationale = target.split(". ", 1)[1].strip() or None
        out.append(_make("strategy_qa", Category.COMMONSENSE, AnswerType.YES_NO, str(i), q, answer,
                         rationale=rationale))
    return {"all": out}


READERS: dict[str, Callable[[Path], dict[str, list[Example]]]] = {
    "singleeq": _read_math_word_problems("singleeq"),
    "addsub": _read_math_word_problems("addsub"),
    "multiarith": _read_math_word_problems("multiarith"),
    "gsm8k": _read_gsm8k,
    "aqua": _read_aqua,
    "svamp": _read_svamp,
    "date_understanding": _read_bigbench_choice(
        "date_understanding", Category.OTHER, "ABCDEF", shuffle=True, prefix=""),
    "tracking_shuffled_objects": _read_bigbench_choice(
        "tracking_shuffled_objects", Category.OTHER, "ABC", shuffle=False,
        prefix="\nWhich choice is true ? "),
    "last_letters": _read_examples_list("last_letters", AnswerType.STRING),
    "coin_flip": _read_examples_list("coin_flip", AnswerType.YES_NO),
    "commonsense_qa": _read_commonsense_qa,
    "strategy_qa": _read_strategy_qa,
}


def read_raw(task: str, data_dir: Path) -> dict[str, list[Example]]:
    """All examples of a built-in task from its original files, by file part."""
    return READERS[task](Path(data_dir))
