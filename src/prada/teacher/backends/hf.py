"""A local transformers model as the teacher (``teacher.backend: hf``).

``teacher.model`` is anything ``prada.student.model.load_base_model`` loads: a local folder, a cached
hub id, or an alias (``smollm2-135m-instruct``, ``qwen2.5-coder-1.5b-instruct``, ...), in
``teacher.dtype`` (``auto``: bfloat16 on CUDA, float32 on CPU). Generation is batched
(``teacher.batch_size`` rows, left padding, rows sorted by prompt length). Every row — one
(question, sample) — samples from its own ``torch.Generator`` seeded from (teacher seed, example id,
stage, sample index), through a logits processor, so a sample's text does not depend on which other
rows share its batch, nor on a resume (up to the floating-point effects of padding). Stop strings
are cut after decoding.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from typing import Any

from prada.errors import PradaError, TeacherError
from prada.teacher.backends.base import OnResult, Request, Result, Usage

logger = logging.getLogger(__name__)


def row_seed(seed: int, example_id: str, stage: str, sample_index: int) -> int:
    """A 63-bit seed per (teacher seed, question, stage, sample)."""
    blob = f"{seed}\x00{example_id}\x00{stage}\x00{sample_index}".encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:8], "big") >> 1


class _PerRowSampler:
    """A logits processor that draws each row's token with that row's own generator.

    Greedy rows are left alone (``generate`` runs greedy and takes the argmax). Sampled rows get
    temperature and top-p applied, one token drawn with ``torch.multinomial(generator=...)``, and
    every other logit set to ``-inf`` so that the argmax is the drawn token.
    """

    def __init__(self, temperatures: list[float], top_ps: list[float], generators: list[Any]) -> None:
        self.temperatures = temperatures
        self.top_ps = top_ps
        self.generators = generators

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        out = scores.clone()
        for i, (t, p, g) in enumerate(zip(self.temperatures, self.top_ps, self.generators, strict=True)):
            if t <= 0.0:
                continue
            logits = scores[i].float() / t  # (V,)
            probs = torch.softmax(logits, dim=-1)
            if p < 1.0:
                sorted_p, order = torch.sort(probs, descending=True)
                cum = torch.cumsum(sorted_p, dim=-1)
                drop = cum - sorted_p > p  # keep the smallest prefix whose mass reaches p
                sorted_p[drop] = 0.0
                probs = torch.zeros_like(probs).scatter(0, order, sorted_p)
            token = torch.multinomial(probs, 1, generator=g)
            row = torch.full_like(out[i], float("-inf"))
            row[token] = 0.0
            out[i] = row
        return out


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
        self.dtype = dtype if dtype != "auto" else ("bfloat16" if self.device.startswith("cuda") else "float32")
        if model_obj is None or tokenizer is None:
            model_obj, tokenizer = self._load(model)
        self._lm = model_obj.to(self.device).eval()
        self._tok = tokenizer
        self._tok.padding_side = "left"
        if self._tok.pad_token is None:
            self._tok.pad_token = self._tok.eos_token

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
        rows: list[tuple[int, int, str]] = []  # (request number, position, text)
        for r, req in enumerate(requests):
            text = self._render(req)
            rows.extend((r, p, text) for p in range(req.n))
        lengths = {}
        for r, _p, text in rows:
            if r not in lengths:
                lengths[r] = len(self._tok(text, add_special_tokens=False)["input_ids"])
        # Long prompts first (memory errors show up at once); ties in request order.
        rows.sort(key=lambda row: (-lengths[row[0]], row[0], row[1]))
        pending: dict[int, dict[int, tuple[str, str, int, int]]] = {}
        started: dict[int, float] = {}
        for start in range(0, len(rows), self.batch_size):
            batch = rows[start:start + self.batch_size]
            t0 = time.perf_counter()
            outs = self._generate_batch([requests[r] for r, _, _ in batch], [p for _, p, _ in batch],
                                        [t for _, _, t in batch])
            dt = time.perf_counter() - t0
            for (r, p, _), out in zip(batch, outs, strict=True):
                pending.setdefault(r, {})[p] = out
                started[r] = started.get(r, 0.0) + dt / len(batch)
                req = requests[r]
                if len(pending[r]) == req.n:
                    got = pending.pop(r)
                    texts = [got[i][0] for i in range(req.n)]
                    reasons = [got[i][1] for i in range(req.n)]
                    usage = Usage(sum(got[i][2] for i in range(req.n)), sum(got[i][3] for i in range(req.n)))
                    on_result(Result(req, texts, reasons, usage, latency_s=started.pop(r)))

    def _generate_batch(self, reqs: list[Request], positions: list[int], texts: list[str]) -> list[tuple[str, str, int, int]]:
        import torch
        from transformers import GenerationConfig, LogitsProcessorList

        max_new = max(r.sampling.max_tokens for r in reqs)  # rows are cut to their own limit below
        enc = self._tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        generators = []
        for req, p in zip(reqs, positions, strict=True):
            g = torch.Generator(device=self.device)
            g.manual_seed(row_seed(self.seed, req.example.id, req.stage, req.sample_indices[p]))
            generators.append(g)
        sampler = _PerRowSampler([r.sampling.temperature for r in reqs], [r.sampling.top_p for r in reqs], generators)
        eos = self._lm.generation_config.eos_token_id
        if eos is None:
            eos = self._tok.eos_token_id
        gen_cfg = GenerationConfig(
            max_new_tokens=max_new,
            do_sample=False,
            pad_token_id=self._tok.pad_token_id,
            eos_token_id=eos,
        )
        with torch.no_grad():
            out = self._lm.generate(**enc, generation_config=gen_cfg, logits_processor=LogitsProcessorList([sampler]))
        new = out[:, enc["input_ids"].shape[1]:]  # (B, T_new)
        eos_ids = set(eos if isinstance(eos, list) else [eos])
        results = []
        for i, req in enumerate(reqs):
            ids = new[i].tolist()[: req.sampling.max_tokens]
            reason = "length"
            for j, tok in enumerate(ids):
                if tok in eos_ids:
                    ids, reason = ids[:j], "stop"
                    break
            text = self._tok.decode(ids, skip_special_tokens=True)
            for stop in req.sampling.stop:
                cut = text.find(stop)
                if cut >= 0:
                    text, reason = text[:cut], "stop"
            prompt_tokens = int(enc["attention_mask"][i].sum())
            results.append((text, reason, prompt_tokens, len(ids)))
        return results
