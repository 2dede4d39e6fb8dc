"""A local transformers model as the teacher (``teacher.backend: hf``).

``teacher.model`` is anything ``prada.student.model.load_base_model`` loads: a local folder, a cached
hub id, or an alias (``smollm2-135m-instruct``, ``qwen2.5-coder-1.5b-instruct``, ...), in
``teacher.dtype`` (``auto``: bfloat16 on CUDA, float32 on CPU). Generation runs on prada's own
decoder (``prada.evaluation.generate``: an append-only KV cache, at most ``teacher.batch_size``
rows at a time, sorted by prompt length; a finished row's place goes to the next waiting row, and
a request is handed on as soon as its last sample is done). Every row — one
(question, sample) — samples from its own ``torch.Generator`` seeded from (teacher seed, example id,
stage, sample index), so a sample's text does not depend on which other rows share its batch, nor
on a resume (up to the floating-point effects of padding). A row ends at an EOS id or at one of its
stop strings; the text is cut before the stop string.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from prada.errors import PradaError, TeacherError
from prada.teacher.backends.base import OnResult, Request, Result, Usage

logger = logging.getLogger(__name__)


def row_seed(seed: int, example_id: str, stage: str, sample_index: int) -> int:
    """A 63-bit seed per (teacher seed, question, stage, sample)."""
    blob = f"{seed}\x00{example_id}\x00{stage}\x00{sample_index}".encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:8], "big") >> 1


@dataclass
class _DecoderView:
    """What ``prada.evaluation.generate`` needs of a model: the LM, its tokenizer and device."""

    causal_lm: Any
    tokenizer: Any
    device: str
    training: bool = False

    def eval(self) -> _DecoderView:
        return self

    def train(self, mode: bool = True) -> _DecoderView:
        return self


class HFBackend:
    """``teacher.backend: hf``."""

    name = "hf"
    max_n = 1
    max_samples: int | None = None
    gold_answers = False

    def __init__(self, model: str, *, batch_size: int = 8, seed: int = 0, device: str | None = None,
                 model_obj: Any = None, tokenizer: Any = None, dtype: str = "auto") -> None:
        import torch

        if batch_size < 1:
            raise TeacherError(f"teacher.batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.batch_size = batch_size
        self.seed = seed
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if dtype not in ("auto", "float32", "bfloat16"):
            raise TeacherError(f"teacher.dtype must be auto, float32 or bfloat16, got {dtype!r}")
        on_cuda = self.device.startswith("cuda")
        self.dtype: Literal["float32", "bfloat16"] = (
            "bfloat16" if dtype == "bfloat16" or (dtype == "auto" and on_cuda) else "float32")
        if model_obj is None or tokenizer is None:
            model_obj, tokenizer = self._load(model)
        self._lm = model_obj.to(self.device).eval()
        self._tok = tokenizer  # padding is the decoder's own (left, EOS when there is no pad token)

    def _load(self, model: str) -> tuple[Any, Any]:
        from prada.config import StudentConfig
        from prada.student.model import load_base_model

        try:
            return load_base_model(StudentConfig(model=model, dtype=self.dtype))
        except PradaError as e:
            msg = str(e).replace("student.model: ", "")
            raise TeacherError(f"teacher.model '{model}' (hf backend): {msg}") from None

    def close(self) -> None:
        self._lm = None

    # ----------------------------------------------------------------------------------------
    def _render(self, req: Request) -> str:
        if isinstance(req.prompt, str):
            return req.prompt
        if not getattr(self._tok, "chat_template", None):
            raise TeacherError(f"teacher.chat: the tokenizer of '{self.model}' has no chat template")
        return self._tok.apply_chat_template(list(req.prompt), tokenize=False, add_generation_prompt=True)

    def generate(self, requests: Sequence[Request], on_result: OnResult) -> None:
        from prada.evaluation.generate import Generation, PerRowSampling, generate

        rows: list[tuple[int, int, list[int]]] = []  # (request number, position, prompt token ids)
        for r, req in enumerate(requests):
            ids = self._tok(self._render(req), add_special_tokens=False)["input_ids"]
            rows.extend((r, p, ids) for p in range(req.n))
        if not rows:
            return
        # Long prompts first (memory errors show up at once); ties in request order.
        rows.sort(key=lambda row: (-len(row[2]), row[0], row[1]))
        sampler = PerRowSampling(
            [requests[r].sampling.temperature for r, _, _ in rows], [requests[r].sampling.top_p for r, _, _ in rows],
            [row_seed(self.seed, requests[r].example.id, requests[r].stage, requests[r].sample_indices[p])
             for r, p, _ in rows],
            device=self.device,
        )
        stops = {req.sampling.stop for req in requests}
        shared_stop = list(next(iter(stops))) if len(stops) == 1 else None  # else: cut after decoding
        pending: dict[int, dict[int, tuple[str, str, int, int]]] = {}
        start = time.perf_counter()

        def finished(done: Sequence[tuple[int, Generation]]) -> None:
            # A request is handed on (and cached) as soon as its last sample is done.
            for i, gen in done:
                r, p, prompt = rows[i]
                req = requests[r]
                pending.setdefault(r, {})[p] = self._completion(req, prompt, gen)
                if len(pending[r]) == req.n:
                    got = pending.pop(r)
                    texts = [got[k][0] for k in range(req.n)]
                    reasons: list[str | None] = [got[k][1] for k in range(req.n)]
                    usage = Usage(sum(got[k][2] for k in range(req.n)), sum(got[k][3] for k in range(req.n)))
                    on_result(Result(req, texts, reasons, usage, latency_s=time.perf_counter() - start))

        # One stream over every row: a finished row's place goes to the next waiting one
        # (continuous batching), at most teacher.batch_size rows at a time.
        view = _DecoderView(self._lm, self._tok, self.device)
        generate(view, [ids for _, _, ids in rows], max_new_tokens=max(req.sampling.max_tokens for req in requests),
                 batch_size=self.batch_size, stop=shared_stop or None, choose=sampler, sort_by_length=False,
                 on_finished=finished)

    def _completion(self, req: Request, prompt: list[int], gen: Any) -> tuple[str, str, int, int]:
        """(text, finish reason, prompt tokens, completion tokens) of one generated row."""
        ids = list(gen.token_ids[: req.sampling.max_tokens])
        reason = "stop" if gen.stop_reason in ("eos", "stop") and len(ids) == len(gen.token_ids) else "length"
        text = gen.text if len(ids) == len(gen.token_ids) else self._tok.decode(ids, skip_special_tokens=True)
        for stop in req.sampling.stop:
            cut = text.find(stop)
            if cut >= 0:
                text, reason = text[:cut], "stop"
        return text, reason, len(prompt), len(ids)
