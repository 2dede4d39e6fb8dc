"""The dataset's own rationales as the teacher (``teacher.backend: gold``), e.g. GSM8K's solutions.

Stage 1 returns ``Example.rationale``; stage 2 returns ``" {gold answer}."``, and the prediction is
the gold answer itself. Questions without a rationale are refused before any request
(``check_examples``): a re-run could never fill them in.
"""

from __future__ import annotations

from collections.abc import Sequence

from prada.data.example import Example
from prada.errors import TeacherError
from prada.teacher.backends.base import OnResult, Request, Result


class GoldBackend:
    """``teacher.backend: gold``."""

    name = "gold"
    max_n = 1
    max_samples: int | None = 1
    gold_answers = True

    def __init__(self, model: str = "gold") -> None:
        self.model = model

    def close(self) -> None:
        pass

    def check_examples(self, examples: Sequence[Example]) -> None:
        """Refuse, before anything is written, questions that have no gold rationale."""
        missing = [ex.id for ex in examples if not (ex.rationale and ex.rationale.strip())]
        if missing:
            shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
            raise TeacherError(
                f"teacher.backend 'gold': {len(missing)} of {len(examples)} questions have no gold rationale "
                f"({shown}); add one to each (custom tasks: the rationale_field), drop those questions, or "
                "use another teacher backend"
            )

    def generate(self, requests: Sequence[Request], on_result: OnResult) -> None:
        for req in requests:
            ex = req.example
            if req.n != 1 or req.sample_indices[0] != 0:
                on_result(Result.failure(req, "the gold backend has one rationale (sample 0) per question"))
            elif req.stage == "rationale":
                if ex.rationale:
                    on_result(Result(req, [ex.rationale], ["gold"]))
                else:
                    on_result(Result.failure(req, f"example {ex.id} has no gold rationale"))
            else:
                on_result(Result(req, [f" {ex.answer}."], ["gold"]))
