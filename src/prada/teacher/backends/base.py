"""The one small interface every teacher backend implements, and the records it exchanges.

A *request* is one call to the teacher: one prompt, one set of sampling parameters and one or more
sample indices (several only where the backend can draw ``n`` samples in one call). A backend
answers every request with one or more *results* — through a callback, as soon as each completes,
so that the caller can persist it at once. A result either carries one completion per sample index
or an ``error`` string: a failure is a record, never a silent ``None``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from prada.data.example import Example

Stage = Literal["rationale", "answer"]

Message = dict[str, str]
"""A chat message: ``{"role": "user" | "assistant" | "system", "content": "..."}``."""

Prompt = str | tuple[Message, ...]
"""A plain completion prompt, or a chat conversation (chat models)."""


@dataclass(frozen=True)
class Sampling:
    """Decoding parameters of one request. ``temperature == 0`` means greedy."""

    temperature: float
    top_p: float
    max_tokens: int
    stop: tuple[str, ...] = ()

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "temperature": float(self.temperature),
            "top_p": float(self.top_p),
            "max_tokens": int(self.max_tokens),
        }
        if self.stop:
            d["stop"] = list(self.stop)
        return d


@dataclass(frozen=True)
class Request:
    """One call to the teacher.

    ``keys[i]`` is the cache key of sample ``sample_indices[i]``; ``seeds[i]`` its sampling seed
    (consecutive: a server drawing ``n`` choices from ``seed`` gives choice ``j`` seed ``seed + j``).
    """

    stage: Stage
    example: Example
    prompt: Prompt
    sampling: Sampling
    sample_indices: tuple[int, ...]
    keys: tuple[str, ...]
    seeds: tuple[int, ...]

    @property
    def n(self) -> int:
        return len(self.sample_indices)

    @property
    def chat(self) -> bool:
        return not isinstance(self.prompt, str)

    def subset(self, positions: Sequence[int]) -> Request:
        """The same request restricted to some of its samples (by position)."""
        return Request(
            stage=self.stage,
            example=self.example,
            prompt=self.prompt,
            sampling=self.sampling,
            sample_indices=tuple(self.sample_indices[p] for p in positions),
            keys=tuple(self.keys[p] for p in positions),
            seeds=tuple(self.seeds[p] for p in positions),
        )


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens}


@dataclass
class Result:
    """The outcome of a request (or of part of one, when a backend splits it).

    ``texts[i]`` / ``finish_reasons[i]`` belong to ``request.sample_indices[i]``. With ``error``
    set, ``texts`` is empty and the samples are to be retried by a later run.
    """

    request: Request
    texts: list[str] = field(default_factory=list)
    finish_reasons: list[str | None] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    error: str | None = None
    attempts: int = 1
    latency_s: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)
    """Backend provenance kept in the cache (``replay``: the recorded question, for choice remapping)."""

    @property
    def ok(self) -> bool:
        return self.error is None

    @classmethod
    def failure(cls, request: Request, error: str, *, attempts: int = 1, latency_s: float = 0.0) -> Result:
        return cls(request=request, error=error, attempts=attempts, latency_s=latency_s)


OnResult = Callable[[Result], None]


@runtime_checkable
class TeacherBackend(Protocol):
    """What the generation loop needs from a teacher.

    - ``name``: registry name (``openai``, ``hf``, ...), part of every cache key.
    - ``model``: the model identifier, part of every cache key.
    - ``max_n``: how many samples one request may carry (1: one sample per request).
    - ``max_samples``: samples per question it can give (None: any number).
    - ``gold_answers``: the backend knows the gold answer (``gold``): predictions are the gold.
    - ``generate(requests, on_result)``: answer every request, calling ``on_result`` once per
      result as soon as it is complete (from the calling thread). Raises ``TeacherError`` only for
      problems that make every further request pointless (bad model, rejected key).
    - ``close()``: release models, connections.
    """

    name: str
    model: str
    max_n: int
    gold_answers: bool

    @property
    def max_samples(self) -> int | None: ...

    def generate(self, requests: Sequence[Request], on_result: OnResult) -> None: ...

    def close(self) -> None: ...
