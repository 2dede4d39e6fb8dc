"""Offline batch generation with vLLM (``teacher.backend: vllm``).

vLLM is imported only when this backend is built; without it, or without a CUDA GPU, building the
backend raises a ``TeacherError`` saying so. All requests of a stage go to ``LLM.generate`` (or
``LLM.chat``) in one call — vLLM schedules them itself — with ``n`` samples per request and the
request's seed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from prada.errors import TeacherError
from prada.hardware import require_vllm
from prada.teacher.backends.base import OnResult, Request, Result, Usage

logger = logging.getLogger(__name__)


class VLLMBackend:
    """``teacher.backend: vllm``."""

    name = "vllm"
    max_n = 128
    max_samples: int | None = None
    gold_answers = False

    def __init__(self, model: str, *, seed: int = 0, **llm_kwargs: Any) -> None:
        vllm = require_vllm("teacher.backend=vllm", "teacher.backend=hf", TeacherError)
        self.model = model
        self._vllm = vllm
        try:
            self._llm = vllm.LLM(model=model, seed=seed, **llm_kwargs)
        except Exception as e:  # vLLM raises many kinds for a bad model
            raise TeacherError(f"teacher.model '{model}' (vllm backend): cannot load ({type(e).__name__}: {e})") from None

    def close(self) -> None:
        self._llm = None

    def _params(self, req: Request) -> Any:
        s = req.sampling
        return self._vllm.SamplingParams(
            n=req.n,
            temperature=s.temperature,
            top_p=s.top_p if not s.greedy else 1.0,
            max_tokens=s.max_tokens,
            stop=list(s.stop) or None,
            seed=None if s.greedy else req.seeds[0],
        )

    def generate(self, requests: Sequence[Request], on_result: OnResult) -> None:
        plain = [r for r in requests if isinstance(r.prompt, str)]
        chat = [r for r in requests if not isinstance(r.prompt, str)]
        for group, is_chat in ((plain, False), (chat, True)):
            if not group:
                continue
            t0 = time.perf_counter()
            params = [self._params(r) for r in group]
            if is_chat:
                outputs = self._llm.chat([list(r.prompt) for r in group], params, use_tqdm=False)
            else:
                outputs = self._llm.generate([r.prompt for r in group], params, use_tqdm=False)
            dt = (time.perf_counter() - t0) / max(1, len(group))
            for req, out in zip(group, outputs, strict=True):
                texts = [c.text for c in out.outputs]
                if len(texts) != req.n:
                    on_result(Result.failure(req, f"vllm returned {len(texts)} of {req.n} samples"))
                    continue
                usage = Usage(len(out.prompt_token_ids or []), sum(len(c.token_ids) for c in out.outputs))
                on_result(Result(req, texts, [c.finish_reason for c in out.outputs], usage, latency_s=dt))
