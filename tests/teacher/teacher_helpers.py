"""Shared helpers of the teacher tests: a small arithmetic task and config builders."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from prada.config import RunConfig, load_config
from prada.data.example import AnswerType, Category, Example

TRIGGER = "Therefore, the answer (arabic numerals) is"


def arith_records(n: int) -> list[dict[str, str]]:
    return [{"question": f"Tom has {3 + i} apples and buys {2 * i + 1} more. How many apples?", "answer": str(4 + 3 * i)}
            for i in range(n)]


@dataclass
class ArithTask:
    """A task object shaped like ``prada.data.Task`` (for tests that inject it)."""

    examples: list[Example]
    name: str = "arith"
    category: Category = Category.ARITHMETIC
    answer_type: AnswerType = AnswerType.NUMBER
    trigger: str = TRIGGER
    choice_letters: str | None = None
    split_names: tuple[str, ...] = ("train", "test")
    loads: list[str] = field(default_factory=list)

    def splits(self) -> tuple[str, ...]:
        return self.split_names

    def load(self, split: str = "train", data_dir: object = None) -> list[Example]:
        self.loads.append(split)
        return list(self.examples)


def arith_examples(n: int) -> list[Example]:
    return [Example(id=f"arith/{i}", dataset="arith", category=Category.ARITHMETIC, answer_type=AnswerType.NUMBER,
                    question=r["question"], answer=r["answer"], rationale=f"{r['question'].split()[2]} plus more is {r['answer']}.")
            for i, r in enumerate(arith_records(n))]


def openai_cfg(base_url: str, *overrides: str, arith_jsonl: Path | None = None) -> RunConfig:
    ov = [
        "methods=[ft_cot]",
        "teacher.backend=openai",
        "teacher.model=fake-teacher",
        f"teacher.base_url={base_url}",
        "teacher.samples=4",
        "teacher.concurrency=4",
        "teacher.request_timeout=5",
        "teacher.max_retries=4",
    ]
    if arith_jsonl is not None:
        ov += ["data.source=arith", f"data.custom_tasks=[{{name: arith, path: '{arith_jsonl}', answer_type: number}}]"]
    return load_config(None, [*ov, *overrides])


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
