"""The dataset's own rationales as the teacher (``teacher.backend: gold``), e.g. GSM8K's solutions.

Stage 1 returns ``Example.rationale``; stage 2 returns ``" {gold answer}."``, and the prediction is
the gold answer itself. An example without a rationale becomes an error result.
"""

from __future__ import annotations

from collections.abc import Sequence

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
