"""Batched greedy decoding for evaluation, with a KV cache and per-row stopping.

``greedy_generate(student, prompts, ...)`` takes token-id prompts of any lengths and returns one
``Generation`` per prompt, in the input order. How it spends compute:

- prompts are sorted by length (longest first) and cut into batches, so a batch holds prompts of
  similar length and little left padding; results are put back in the input order;
- each batch is LEFT-padded and run through one prefill pass (virtual P-Tuning tokens, when the
  student has a prompt encoder, are prepended as embeddings; positions follow the attention mask,
  so padding does not shift them); then one token per step is decoded from the KV cache;
- a row stops at an EOS id, at a stop pattern (e.g. Fine-tune-CoT's ``END``) found in the tail of
  its decoded text, or after ``max_new_tokens``; finished rows are **removed from the batch and
  from the KV cache** (``Cache.batch_select_indices``), so they cost nothing further while the
  others continue.

Greedy decoding is deterministic: a prompt's output does not depend on its batch (up to float
rounding of padded attention, which the tests check does not change the argmax on fp32 models).
"""

from __future__ import annotations

import inspect
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

logger = logging.getLogger(__name__)

STOP_TAIL_TOKENS = 8
"""How many trailing generated tokens are decoded to look for a stop pattern."""


@dataclass(frozen=True)
class Generation:
    """One prompt's greedy continuation."""

    token_ids: tuple[int, ...]
    """Generated ids, without the EOS id that ended the row (if any)."""
    text: str
    """Decoded ``token_ids`` (special tokens skipped), cut right after the stop pattern's match."""
    stop_reason: str
    """``"eos"``, ``"stop"`` (a stop pattern matched) or ``"length"`` (``max_new_tokens``)."""

    @property
    def num_tokens(self) -> int:
        """Generated tokens, counting the EOS that ended the row (it was computed too)."""
        return len(self.token_ids) + (1 if self.stop_reason == "eos" else 0)


@dataclass(frozen=True)
class GenerationStats:
    generated_tokens: int
    seconds: float
    batches: int

    @property
    def tokens_per_s(self) -> float:
        return self.generated_tokens / self.seconds if self.seconds > 0 else 0.0


def _forward_accepts(model: Any, name: str) -> bool:
    try:
        return name in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):  # pragma: no cover - exotic models
        return False


def _returned_cache(out: Any) -> Any:
    cache = getattr(out, "cache", None)  # transformers >= 5.2x
    return cache if cache is not None else out.past_key_values


def _make_cache(model: Any) -> Any:
    from transformers import DynamicCache

    try:
        return DynamicCache(config=model.config)
    except (TypeError, AttributeError):  # a config without get_text_config (remote code, test fakes)
        return DynamicCache()


def _compile_stop(stop: str | Sequence[str] | None) -> re.Pattern[str] | None:
    """A regex for stop patterns. ``"END"``-like words match as whole words (``\\bEND\\b``)."""
    if not stop:
        return None
    items = [stop] if isinstance(stop, str) else list(stop)
    parts = [rf"\b{re.escape(s)}\b" if s.isalnum() else re.escape(s) for s in items]
    return re.compile("|".join(parts))


@torch.no_grad()
def _decode_batch(
    student: Any,
    rows: list[list[int]],
    *,
    max_new_tokens: int,
    eos_ids: set[int],
    pad_id: int,
    tokenizer: Any,
    stop_re: re.Pattern[str] | None,
    compact: bool,
) -> list[Generation]:
    lm = student.causal_lm
    device = student.device
    b = len(rows)
    width = max(len(r) for r in rows)
    input_ids = torch.full((b, width), pad_id, dtype=torch.long, device=device)  # (B, T) left-padded
    mask = torch.zeros((b, width), dtype=torch.long, device=device)  # (B, T)
    for i, r in enumerate(rows):
        input_ids[i, width - len(r):] = torch.tensor(r, dtype=torch.long, device=device)
        mask[i, width - len(r):] = 1
    embeds = lm.get_input_embeddings()(input_ids)  # (B, T, D)
    n_virtual = getattr(student, "num_virtual_tokens", 0)
    if n_virtual:
        virtual = student.virtual_token_embeddings(b)  # (B, V, D), at the far left as in training
        embeds = torch.cat([virtual, embeds], dim=1)  # (B, V+T, D)
        mask = torch.cat([mask.new_ones((b, n_virtual)), mask], dim=1)  # (B, V+T)
    position_ids = (mask.cumsum(dim=-1) - 1).clamp(min=0)  # (B, V+T): follow the mask
    # transformers >= 5.2x names the KV cache `cache` (`past_key_values` is deprecated).
    cache_kw = "cache" if _forward_accepts(lm, "cache") else "past_key_values"
    cache = _make_cache(lm)
    extra = {"logits_to_keep": 1} if _forward_accepts(lm, "logits_to_keep") else {}
    out = lm(inputs_embeds=embeds, attention_mask=mask, position_ids=position_ids,
             use_cache=True, **{cache_kw: cache}, **extra)
    cache = _returned_cache(out)
    logits = out.logits[:, -1]  # (B, V)
    next_pos = position_ids[:, -1] + 1  # (B,)
    can_compact = compact and hasattr(cache, "batch_select_indices")

    active = list(range(b))  # original row of each batch row
    generated: list[list[int]] = [[] for _ in range(b)]
    reasons = ["length"] * b
    texts: list[str | None] = [None] * b
    finished = torch.zeros(b, dtype=torch.bool, device=device)  # used when not compacting
    for step in range(max_new_tokens):
        tokens = logits.argmax(dim=-1)  # (b,)
        tok_list = tokens.tolist()
        done_now: list[int] = []
        for i, row in enumerate(active):
            if not can_compact and bool(finished[i]):
                continue
            t = tok_list[i]
            if t in eos_ids:
                reasons[row] = "eos"
                done_now.append(i)
                continue
            generated[row].append(t)
            if stop_re is not None:
                tail = tokenizer.decode(generated[row][-STOP_TAIL_TOKENS:], skip_special_tokens=True)
                if stop_re.search(tail):
                    full = tokenizer.decode(generated[row], skip_special_tokens=True)
                    matches = list(stop_re.finditer(full))
                    if matches:  # the first match ends the text
                        texts[row] = full[: matches[0].end()]
                        reasons[row] = "stop"
                        done_now.append(i)
        if step == max_new_tokens - 1:
            break
        if can_compact:
            if done_now:
                dropped = set(done_now)
                keep = [i for i in range(len(active)) if i not in dropped]
                if not keep:
                    break
                idx = torch.tensor(keep, dtype=torch.long, device=device)
                cache.batch_select_indices(idx)
                mask, next_pos, tokens = mask[idx], next_pos[idx], tokens[idx]
                active = [active[i] for i in keep]
        else:
            finished[done_now] = True
            if bool(finished.all()):
                break
            tokens = tokens.masked_fill(finished, pad_id)
        mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)  # (b, L+1)
        out = lm(input_ids=tokens[:, None], attention_mask=mask, position_ids=next_pos[:, None],
                 use_cache=True, **{cache_kw: cache})
        cache = _returned_cache(out)
        logits = out.logits[:, -1]
        next_pos = next_pos + 1
    results = []
    for row in range(b):
        text = texts[row]
        if text is None:
            text = tokenizer.decode(generated[row], skip_special_tokens=True)
        results.append(Generation(tuple(generated[row]), text, reasons[row]))
    return results


def greedy_generate(
    student: Any,
    prompts: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    batch_size: int = 16,
    stop: str | Sequence[str] | None = None,
    eos_ids: Sequence[int] | None = None,
    compact: bool = True,
    sort_by_length: bool = True,
    on_batch: Callable[[Sequence[Generation]], None] | None = None,
) -> tuple[list[Generation], GenerationStats]:
    """Greedy continuations of ``prompts`` (lists of token ids), in the input order.

    ``student`` is a ``prada.student.Student`` (``causal_lm``, ``tokenizer``, ``device`` and, with
    a prompt encoder, ``num_virtual_tokens``/``virtual_token_embeddings``). ``stop``: strings that
    end a row (alphanumeric ones as whole words); ``eos_ids``: default the tokenizer's EOS and the
    generation config's EOS ids. ``compact=False`` keeps finished rows in the batch (for
    comparison in the benchmark). ``on_batch`` is called with each finished batch's generations
    (progress reporting).
    """
    if max_new_tokens < 1:
        raise ValueError("max_new_tokens must be >= 1")
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    tokenizer = student.tokenizer
    if eos_ids is None:
        ids: set[int] = set()
        if tokenizer.eos_token_id is not None:
            ids.add(int(tokenizer.eos_token_id))
        gen_eos = getattr(getattr(student.causal_lm, "generation_config", None), "eos_token_id", None)
        if isinstance(gen_eos, int):
            ids.add(gen_eos)
        elif isinstance(gen_eos, (list, tuple)):
            ids.update(int(x) for x in gen_eos)
        eos_set = ids
    else:
        eos_set = {int(x) for x in eos_ids}
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else next(iter(eos_set), 0)
    stop_re = _compile_stop(stop)
    order = list(range(len(prompts)))
    if sort_by_length:
        order.sort(key=lambda i: -len(prompts[i]))
    results: list[Generation | None] = [None] * len(prompts)
    was_training = student.training
    student.eval()
    start = time.perf_counter()
    batches = 0
    try:
        for lo in range(0, len(order), batch_size):
            chunk = order[lo: lo + batch_size]
            rows = [list(prompts[i]) for i in chunk]
            if any(len(r) == 0 for r in rows):
                raise ValueError("empty prompt")
            outs = _decode_batch(student, rows, max_new_tokens=max_new_tokens, eos_ids=eos_set, pad_id=pad_id,
                                 tokenizer=tokenizer, stop_re=stop_re, compact=compact)
            for i, g in zip(chunk, outs):
                results[i] = g
            batches += 1
            if on_batch is not None:
                on_batch(outs)
    finally:
        student.train(was_training)
    seconds = time.perf_counter() - start
    done = [g for g in results if g is not None]
    assert len(done) == len(prompts)  # internal invariant, not user input
    return done, GenerationStats(sum(g.num_tokens for g in done), seconds, batches)
