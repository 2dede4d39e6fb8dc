"""Recorded completions as the teacher (``teacher.backend: replay``).

Reads ``<replay_dir>/<task>.jsonl`` — by default ``<data_dir>/teacher/<model>/<prompt>/``, e.g. the
text-davinci-002 Zero-Shot-CoT logs — one greedy sample per question, joined to the task's examples
by ``normalise_question``. Stage 1 returns the recorded ``rationale``; stage 2 the recorded
``answer_completion`` with its leading trigger removed (the generator puts the trigger back before
extracting, so extraction sees exactly the recorded text). A question without a record becomes an
error result. The recorded question travels in ``Result.meta`` so that a multiple-choice letter can
be mapped to our copy's option order (Date Understanding was shuffled when recorded).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prada.data.teacher_corpus import read_records, recorded_teacher_path
from prada.data.text import normalise_question
from prada.errors import DataError, TeacherError
from prada.teacher.backends.base import OnResult, Request, Result

logger = logging.getLogger(__name__)


class ReplayBackend:
    """``teacher.backend: replay``."""

    name = "replay"
    max_n = 1
    max_samples: int | None = 1
    gold_answers = False

    def __init__(self, model: str, *, task: str, trigger: str, data_dir: Path | None,
                 prompt: str = "zero_shot_cot", replay_dir: str | Path | None = None) -> None:
        self.model = model
        self.trigger = trigger.strip()
        try:
            if replay_dir is not None:
                path = Path(replay_dir).expanduser() / f"{task}.jsonl"
                if not path.is_file():
                    have = sorted(p.stem for p in path.parent.glob("*.jsonl")) if path.parent.is_dir() else []
                    raise DataError(f"{path}: no recorded completions for task '{task}' (recorded: {', '.join(have) or 'none'})")
            else:
                path = recorded_teacher_path(data_dir, task, teacher=model, method=prompt)
            records = read_records(path)
        except DataError as e:
            raise TeacherError(f"replay teacher: {e}") from None
        self.path = path
        self._by_question: dict[str, dict[str, Any]] = {}
        for rec in records:
            self._by_question.setdefault(normalise_question(str(rec["question"])), rec)

    def close(self) -> None:
        pass

    def record_for(self, question: str) -> dict[str, Any] | None:
        return self._by_question.get(normalise_question(question))

    def generate(self, requests: Sequence[Request], on_result: OnResult) -> None:
        for req in requests:
            rec = self.record_for(req.example.question)
            if rec is None:
                on_result(Result.failure(req, f"no recorded completion for this question in {self.path}"))
                continue
            if req.n != 1 or req.sample_indices[0] != 0:
                on_result(Result.failure(req, "recorded completions hold one greedy sample (sample 0) per question"))
                continue
            if req.stage == "rationale":
                text = str(rec["rationale"])
            else:
                text = str(rec["answer_completion"])
                if text.startswith(self.trigger):
                    text = text[len(self.trigger):]
            on_result(Result(req, [text], ["recorded"], meta={"recorded_question": str(rec["question"]),
                                                              "recorded_file": self.path.name}))
