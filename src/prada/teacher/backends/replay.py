"""Recorded completions as the teacher (``teacher.backend: replay``).

Reads ``<replay_dir>/<task>.jsonl`` — by default ``<data_dir>/teacher/<model>/<prompt>/``, e.g. the
text-davinci-002 Zero-Shot-CoT logs — joined to the task's examples by ``normalise_question``.
Stage 1 returns the recorded ``rationale``; stage 2 the recorded ``answer_completion`` with its
leading trigger removed (the generator puts the trigger back before extracting, so extraction sees
exactly the recorded text). The recorded question travels in ``Result.meta`` so that a
multiple-choice letter can be mapped to our copy's option order (Date Understanding was shuffled
when recorded).

**Several samples per question.** A record may carry ``sample_index`` (default 0): a file with
indices 0..D-1 replays D samples per question (``teacher.samples`` up to D), e.g. the
``samples/<task>.jsonl`` that every teacher run writes (``teacher.replay_dir: <out>/samples``).
Such records also carry their provenance (``teacher``: backend, model, prompt, chat; ``sampling``:
temperature, top_p, max_tokens, seed); a replay whose config asks for something else — another
model, temperature, seed, token limit, prompt style or chat format — is refused with the key to
set, so the corpus never claims a provenance it does not have. A sample without a record becomes
an error result.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prada.data.teacher_corpus import read_records, recorded_teacher_path
from prada.data.text import normalise_question
from prada.errors import DataError, TeacherError
from prada.formats import ZERO_SHOT_PROMPT
from prada.teacher.backends.base import OnResult, Request, Result

logger = logging.getLogger(__name__)


class ReplayBackend:
    """``teacher.backend: replay``."""

    name = "replay"
    max_n = 1
    gold_answers = False

    def __init__(self, model: str, *, task: str, trigger: str, data_dir: Path | None,
                 prompt: str = ZERO_SHOT_PROMPT, replay_dir: str | Path | None = None) -> None:
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
        self._by_question: dict[str, dict[int, dict[str, Any]]] = {}
        for line, rec in enumerate(records, 1):
            index = rec.get("sample_index", 0)
            if not isinstance(index, int) or isinstance(index, bool) or index < 0:
                raise TeacherError(f"replay teacher: {path}: record {line}: sample_index must be an integer >= 0, "
                                   f"got {index!r}")
            self._by_question.setdefault(normalise_question(str(rec["question"])), {}).setdefault(index, rec)
        self._check_provenance(prompt)

    @property
    def max_samples(self) -> int:
        """D of the file: the highest recorded sample index + 1 (1 for one greedy sample per question)."""
        return 1 + max((i for by_index in self._by_question.values() for i in by_index), default=0)

    def _check_provenance(self, prompt: str) -> None:
        """Refuse a file recorded with another model or prompt style than the config names."""
        for key, want, config_key in (("model", self.model, "teacher.model"), ("prompt", prompt, "teacher.prompt")):
            recorded = {str(rec["teacher"][key]) for by_index in self._by_question.values()
                        for rec in by_index.values() if isinstance(rec.get("teacher"), dict) and key in rec["teacher"]}
            if recorded and recorded != {want}:
                raise TeacherError(
                    f"replay teacher: {self.path} was recorded with {key} {sorted(recorded)}, but {config_key} is "
                    f"'{want}'; set {config_key}: {min(recorded)} to replay it"
                )

    def close(self) -> None:
        pass

    def record_for(self, question: str, sample_index: int = 0) -> dict[str, Any] | None:
        return self._by_question.get(normalise_question(question), {}).get(sample_index)

    def generate(self, requests: Sequence[Request], on_result: OnResult) -> None:
        for req in requests:
            if req.n != 1:
                on_result(Result.failure(req, "the replay backend answers one sample per request"))
                continue
            index = req.sample_indices[0]
            # Stage 2 is greedy and keyed by its prompt (sample index 0 for every rationale): find
            # the record whose rationale this answer prompt continues.
            rec = self.record_for(req.example.question, index) if req.stage == "rationale" else self._answer_record(req)
            if rec is None:
                what = f"sample {index}" if req.stage == "rationale" else "the rationale of this answer prompt"
                on_result(Result.failure(req, f"no recorded completion ({what}) for this question in {self.path}"))
                continue
            if req.stage == "rationale":
                self._check_sampling(req, rec)
                text = str(rec["rationale"])
            else:
                text = str(rec["answer_completion"]).removeprefix(self.trigger)
            on_result(Result(req, [text], ["recorded"], meta={"recorded_question": str(rec["question"]),
                                                              "recorded_file": self.path.name}))

    def _answer_record(self, req: Request) -> dict[str, Any] | None:
        """The record of the question whose rationale the stage-2 prompt contains (the longest match,
        so that a rationale that is a prefix of another does not take its answer)."""
        by_index = self._by_question.get(normalise_question(req.example.question), {})
        prompt = req.prompt if isinstance(req.prompt, str) else "\n".join(m["content"] for m in req.prompt)
        candidates = [rec for rec in by_index.values() if str(rec["rationale"]).strip() in prompt]
        if not candidates:
            return by_index.get(0) if len(by_index) == 1 else None
        return max(candidates, key=lambda rec: len(str(rec["rationale"]).strip()))

    def _check_sampling(self, req: Request, rec: dict[str, Any]) -> None:
        """A sample recorded at another temperature / top-p / token limit / seed, or in another chat
        format, than the config asks for is a ``TeacherError`` naming the key to set."""
        sampling = rec.get("sampling")
        if isinstance(sampling, dict):
            asked = {"temperature": req.sampling.temperature, "top_p": req.sampling.top_p,
                     "max_tokens": req.sampling.max_tokens,
                     "seed": req.seeds[0] if not req.sampling.greedy else None}
            keys = {"temperature": "teacher.temperature", "top_p": "teacher.top_p",
                    "max_tokens": "teacher.max_rationale_tokens", "seed": "teacher.seed"}
            for field, want in asked.items():
                if field not in sampling:
                    continue
                have = sampling[field]
                same = have == want or (isinstance(have, float | int) and isinstance(want, float | int)
                                        and float(have) == float(want))
                if not same:
                    raise TeacherError(
                        f"replay teacher: {self.path}: sample {req.sample_indices[0]} of {req.example.id} was "
                        f"recorded with {field}={have!r} but the config asks for {want!r}; set {keys[field]} "
                        "to the recorded value (a sample's seed is teacher.seed * 2^20 + its index)"
                    )
        teacher = rec.get("teacher")
        if isinstance(teacher, dict) and "chat" in teacher and bool(teacher["chat"]) != req.chat:
            raise TeacherError(f"replay teacher: {self.path} was recorded with teacher.chat={teacher['chat']}; "
                               f"set teacher.chat: {str(bool(teacher['chat'])).lower()}")
