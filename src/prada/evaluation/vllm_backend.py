"""Optional vLLM generation for ``eval.backend: vllm`` (imported only when used).

vLLM serves what it can load as a plain model: the untrained base model, a fully fine-tuned
checkpoint (``final/backbone``) and a LoRA checkpoint (base model + ``final/lora`` as a
``LoRARequest``). A P-Tuning checkpoint (prompt encoder: ``ptuning_cot``, ``prada``) prepends
learned embeddings that vLLM cannot take, so it is refused with a pointer to ``eval.backend: hf``.
Prompts are passed as token ids, so both backends see exactly the same prompts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from prada.config import StudentConfig
from prada.errors import EvaluationError
from prada.evaluation.generate import Generation, GenerationStats
from prada.hardware import require_vllm

logger = logging.getLogger(__name__)


def _require_vllm() -> Any:
    return require_vllm("eval.backend 'vllm'", "eval.backend: hf", EvaluationError)


class VLLMBackend:
    name = "vllm"

    def __init__(self, llm: Any, lora_request: Any, tokenizer: Any) -> None:
        self.llm = llm
        self.lora_request = lora_request
        self.tokenizer = tokenizer

    @classmethod
    def create(cls, model_ref: str | Path, info: dict[str, Any], student_cfg: StudentConfig, tokenizer: Any) -> VLLMBackend:
        meta: dict[str, Any] = info.get("meta") or {}
        if meta is not None and meta.get("prompt_encoder"):
            raise EvaluationError(
                f"{model_ref}: a P-Tuning checkpoint (method '{meta.get('method')}') prepends learned "
                "embeddings that vLLM cannot serve; evaluate it with eval.backend: hf"
            )
        vllm = _require_vllm()
        from prada.student.model import resolve_model_path

        lora_request = None
        dtype = student_cfg.dtype if student_cfg.dtype != "auto" else "auto"
        if meta is None:
            model_path, tok_path = resolve_model_path(str(model_ref)), None
        elif meta["backbone"] == "full":
            model_path, tok_path = str(Path(model_ref) / "backbone"), str(Path(model_ref) / "tokenizer")
        else:
            model_path, tok_path = resolve_model_path(student_cfg.model), str(Path(model_ref) / "tokenizer")
            if meta["backbone"] == "lora":
                from vllm.lora.request import LoRARequest

                lora_request = LoRARequest("student", 1, str(Path(model_ref) / "lora"))
        kwargs: dict[str, Any] = {"model": model_path, "dtype": dtype, "seed": 0}
        if tok_path:
            kwargs["tokenizer"] = tok_path
        if lora_request is not None:
            kwargs["enable_lora"] = True
            kwargs["max_lora_rank"] = max(8, int((meta.get("lora") or {}).get("r", 16)))
        logger.info("vLLM: loading %s", kwargs)
        return cls(vllm.LLM(**kwargs), lora_request, tokenizer)

    def generate(self, prompts: list[list[int]], max_new_tokens: int, stop: Sequence[str] | None,
                 on_finished: Callable[[Sequence[tuple[int, Generation]]], None] | None = None) -> tuple[list[Generation], GenerationStats]:
        from vllm import SamplingParams

        params = SamplingParams(
            temperature=0.0, max_tokens=max_new_tokens, stop=list(stop or []), include_stop_str_in_output=True
        )
        start = time.perf_counter()
        outs = self.llm.generate(
            [{"prompt_token_ids": p} for p in prompts], params, lora_request=self.lora_request, use_tqdm=False
        )
        seconds = time.perf_counter() - start
        gens = []
        for o in outs:
            c = o.outputs[0]
            reason = "stop" if c.finish_reason == "stop" and c.stop_reason is not None else (
                "eos" if c.finish_reason == "stop" else "length")
            ids = tuple(c.token_ids)
            if reason == "eos" and ids and ids[-1] == self.tokenizer.eos_token_id:
                ids = ids[:-1]
            gens.append(Generation(ids, c.text, reason))
        if on_finished is not None:  # vLLM schedules all prompts at once: one "batch"
            on_finished(list(enumerate(gens)))
        return gens, GenerationStats(sum(g.num_tokens for g in gens), seconds, 1)
