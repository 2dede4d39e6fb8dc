"""Batched decoding for evaluation and the local teacher, with a KV cache and per-row stopping.

``greedy_generate(student, prompts, ...)`` takes token-id prompts of any lengths and returns one
``Generation`` per prompt, in the input order; ``generate(..., choose=PerRowSampling(...))`` does
the same with temperature / top-p sampling, each prompt drawing from its own seeded generator (the
``hf`` teacher backend). How it spends compute:

- prompts are sorted by length (longest first) and cut into batches, so a batch holds prompts of
  similar length and little left padding; results are put back in the input order;
- each batch is LEFT-padded and run through one prefill pass (virtual P-Tuning tokens, when the
  student has a prompt encoder, are prepended as embeddings; positions follow the attention mask,
  so padding does not shift them); then one token per step is decoded from the KV cache, which
  appends in place (``prada.evaluation.kv_cache``: no per-step copy of the whole cache);
- a row stops at an EOS id, at a stop pattern (e.g. Fine-tune-CoT's ``END``) found in the tail of
  its decoded text (decoded only after a token that can end a pattern, ``stop_candidates``), or
  after ``max_new_tokens``; finished rows are **removed from the batch and from the KV cache**
  (``Cache.batch_select_indices``) in groups (``COMPACT_FRACTION``), so they cost little while the
  others continue.

Greedy decoding is deterministic: a prompt's output does not depend on its batch (up to float
rounding of padded attention, which the tests check does not change the argmax on fp32 models).
Sampling is too, given each prompt's seed: a row consumes one draw of its own generator per step.
"""

from __future__ import annotations

import inspect
import logging
import re
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from prada.evaluation.kv_cache import make_decoding_cache

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


def _compile_stop(stop: str | Sequence[str] | None) -> re.Pattern[str] | None:
    """A regex for stop patterns. ``"END"``-like words match as whole words (``\\bEND\\b``)."""
    if not stop:
        return None
    items = [stop] if isinstance(stop, str) else list(stop)
    parts = [rf"\b{re.escape(s)}\b" if s.isalnum() else re.escape(s) for s in items]
    return re.compile("|".join(parts))


_STOP_CANDIDATES: weakref.WeakKeyDictionary[Any, dict[tuple[str, ...], torch.Tensor]] = weakref.WeakKeyDictionary()


def stop_candidates(tokenizer: Any, stop: Sequence[str]) -> torch.Tensor:
    """``(V,)`` bool: the token ids after which a stop pattern may have just been completed.

    A pattern can only end with a token whose text holds the pattern's last character (or an
    incomplete UTF-8 piece, which may be part of it). After any other token the tail text cannot
    newly match, so the decoder skips decoding it: one table lookup per step instead of one
    ``tokenizer.decode`` per row. Computed once per tokenizer and stop set.
    """
    key = tuple(stop)
    try:
        per_tokenizer = _STOP_CANDIDATES.setdefault(tokenizer, {})
    except TypeError:  # a tokenizer that cannot be weakly referenced: no caching
        per_tokenizer = {}
    if key not in per_tokenizer:
        last_chars = {s[-1] for s in key if s}
        pieces = tokenizer.batch_decode([[i] for i in range(len(tokenizer))], skip_special_tokens=True)
        per_tokenizer[key] = torch.tensor(
            [any(c in piece for c in last_chars) or "\ufffd" in piece for piece in pieces], dtype=torch.bool
        )
    return per_tokenizer[key]


TokenChooser = Callable[[torch.Tensor, Sequence[int]], torch.Tensor]
"""Picks each row's next token: ``(logits (b, V), the b rows' prompt indices) -> (b,) token ids``."""


def greedy_tokens(logits: torch.Tensor, rows: Sequence[int]) -> torch.Tensor:
    """The first maximum of each row, as argmax (``max`` is ~4x faster than argmax on bf16 CPU)."""
    return logits.max(dim=-1).indices  # (b,)


class PerRowSampling:
    """Temperature and top-p sampling with one ``torch.Generator`` per prompt.

    Prompt ``i`` samples at ``temperatures[i]`` (``<= 0``: greedy) with nucleus ``top_ps[i]`` from a
    generator seeded with ``seeds[i]``; one draw per step, so its text does not depend on which
    other prompts share its batch, nor on when finished rows leave it.
    """

    def __init__(self, temperatures: Sequence[float], top_ps: Sequence[float], seeds: Sequence[int],
                 device: str | torch.device = "cpu") -> None:
        if not len(temperatures) == len(top_ps) == len(seeds):
            raise ValueError("temperatures, top_ps and seeds need one entry per prompt")
        self.temperatures = list(temperatures)
        self.top_ps = list(top_ps)
        self.generators = []
        for seed in seeds:
            g = torch.Generator(device=device)
            g.manual_seed(int(seed))
            self.generators.append(g)

    def __call__(self, logits: torch.Tensor, rows: Sequence[int]) -> torch.Tensor:
        tokens = greedy_tokens(logits, rows)  # (b,)
        picked = [i for i, row in enumerate(rows) if self.temperatures[row] > 0.0]
        if not picked:
            return tokens
        sel = torch.tensor(picked, device=logits.device)
        temperature = logits.new_tensor([self.temperatures[rows[i]] for i in picked], dtype=torch.float32)
        probs = torch.softmax(logits[sel].float() / temperature[:, None], dim=-1)  # (s, V)
        top_p = [self.top_ps[rows[i]] for i in picked]
        if min(top_p) < 1.0:
            sorted_p, order = probs.sort(dim=-1, descending=True)
            # keep the smallest prefix whose mass reaches p (rows at p = 1 keep everything)
            drop = sorted_p.cumsum(dim=-1) - sorted_p > probs.new_tensor(top_p)[:, None]
            probs = torch.zeros_like(probs).scatter(1, order, sorted_p.masked_fill(drop, 0.0))
        # Inverse-CDF sampling, batched: one uniform per row from that row's own generator
        # (torch.multinomial takes one generator per call: ~20 ms a row over a 152k vocabulary).
        cdf = probs.cumsum(dim=-1)  # (s, V)
        u = torch.cat([torch.rand(1, generator=self.generators[rows[i]], device=logits.device) for i in picked])
        drawn = torch.searchsorted(cdf, (u * cdf[:, -1])[:, None], right=True)[:, 0]  # first cdf > u
        tokens[sel] = drawn.clamp(max=logits.shape[-1] - 1)
        return tokens


COMPACT_FRACTION = 0.25
"""Finished rows leave the batch (and the KV cache) once they are this share of it: removing a
row copies the whole cache, so rows are dropped in groups rather than one by one."""


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
    stop_ids: torch.Tensor | None,
    compact: bool,
    choose: TokenChooser,
    prompt_indices: Sequence[int],
) -> list[Generation]:
    lm = student.causal_lm
    device = student.device
    b = len(rows)
    width = max(len(r) for r in rows)
    n_virtual = getattr(student, "num_virtual_tokens", 0)
    prompt_len = n_virtual + width
    input_ids = torch.full((b, width), pad_id, dtype=torch.long, device=device)  # (B, T) left-padded
    # The attention mask of every step, allocated once: step k reads its first prompt_len + k columns.
    full_mask = torch.ones((b, prompt_len + max_new_tokens), dtype=torch.long, device=device)  # (B, V+T+N)
    for i, r in enumerate(rows):
        input_ids[i, width - len(r):] = torch.tensor(r, dtype=torch.long, device=device)
        full_mask[i, n_virtual: n_virtual + width - len(r)] = 0
    embeds = lm.get_input_embeddings()(input_ids)  # (B, T, D)
    if n_virtual:
        virtual = student.virtual_token_embeddings(b)  # (B, V, D), at the far left as in training
        embeds = torch.cat([virtual, embeds], dim=1)  # (B, V+T, D)
    mask = full_mask[:, :prompt_len]
    position_ids = (mask.cumsum(dim=-1) - 1).clamp(min=0)  # (B, V+T): follow the mask
    # transformers >= 5.2x names the KV cache `cache` (`past_key_values` is deprecated).
    cache_kw = "cache" if _forward_accepts(lm, "cache") else "past_key_values"
    cache = make_decoding_cache(lm, prompt_len + max_new_tokens)
    # The last position's logits only. As an index tensor, not the int 1: the int slices a strided
    # (B, 1, D) view, which the LM head's matmul cannot fold into one GEMM, so it broadcasts the
    # whole (D, V) head weight per row (3.6 GB copied at batch 64 for SmolLM2's 49k vocabulary).
    extra = ({"logits_to_keep": torch.tensor([prompt_len - 1], device=device)}
             if _forward_accepts(lm, "logits_to_keep") else {})
    out = lm(inputs_embeds=embeds, attention_mask=mask, position_ids=position_ids,
             use_cache=True, **{cache_kw: cache}, **extra)
    cache = _returned_cache(out)
    logits = out.logits[:, -1]  # (B, V)
    next_pos = position_ids[:, -1] + 1  # (B,)
    can_compact = compact and hasattr(cache, "batch_select_indices")

    active = list(range(b))  # original row of each batch row
    live = [True] * b  # per batch row: still generating
    generated: list[list[int]] = [[] for _ in range(b)]
    reasons = ["length"] * b
    texts: list[str | None] = [None] * b
    for step in range(max_new_tokens):
        tokens = choose(logits, [prompt_indices[row] for row in active])  # (b,)
        tok_list = tokens.tolist()
        check = stop_ids[tokens.cpu()].tolist() if stop_ids is not None else [stop_re is not None] * len(tok_list)
        for i, row in enumerate(active):
            if not live[i]:
                continue
            t = tok_list[i]
            if t in eos_ids:
                reasons[row] = "eos"
                live[i] = False
                continue
            generated[row].append(t)
            if stop_re is not None and check[i]:
                tail = tokenizer.decode(generated[row][-STOP_TAIL_TOKENS:], skip_special_tokens=True)
                if stop_re.search(tail):
                    full = tokenizer.decode(generated[row], skip_special_tokens=True)
                    matches = list(stop_re.finditer(full))
                    if matches:  # the first match ends the text
                        texts[row] = full[: matches[0].end()]
                        reasons[row] = "stop"
                        live[i] = False
        n_live = sum(live)
        if n_live == 0 or step == max_new_tokens - 1:
            break
        if can_compact and len(live) - n_live >= max(1, COMPACT_FRACTION * len(live)):
            keep = [i for i, alive in enumerate(live) if alive]
            idx = torch.tensor(keep, dtype=torch.long, device=device)
            cache.batch_select_indices(idx)
            full_mask, next_pos, tokens = full_mask[idx], next_pos[idx], tokens[idx]
            active, live = [active[i] for i in keep], [True] * len(keep)
        elif n_live < len(live):  # finished rows wait in the batch: feed them padding
            tokens = tokens.masked_fill(~torch.tensor(live, device=device), pad_id)
        mask = full_mask[:, : prompt_len + step + 1]  # (b, L+1)
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


def greedy_generate(student: Any, prompts: Sequence[Sequence[int]], **kwargs: Any) -> tuple[list[Generation], GenerationStats]:
    """Greedy continuations of ``prompts``: ``generate`` with the first maximum at every step."""
    return generate(student, prompts, choose=greedy_tokens, **kwargs)


def generate(
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
    choose: TokenChooser = greedy_tokens,
) -> tuple[list[Generation], GenerationStats]:
    """Continuations of ``prompts`` (lists of token ids), in the input order.

    ``student`` is a ``prada.student.Student`` (``causal_lm``, ``tokenizer``, ``device`` and, with
    a prompt encoder, ``num_virtual_tokens``/``virtual_token_embeddings``). ``stop``: strings that
    end a row (alphanumeric ones as whole words); ``eos_ids``: default the tokenizer's EOS and the
    generation config's EOS ids. ``compact=False`` keeps finished rows in the batch (for
    comparison in the benchmark). ``on_batch`` is called with each finished batch's generations
    (progress reporting). ``choose`` picks the next tokens (``greedy_tokens``, or a
    ``PerRowSampling`` over the prompts).
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
    stop_ids = None
    if stop_re is not None:
        stop_list = [stop] if isinstance(stop, str) else list(stop or ())
        stop_ids = stop_candidates(tokenizer, stop_list)
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
                                 tokenizer=tokenizer, stop_re=stop_re, stop_ids=stop_ids, compact=compact,
                                 choose=choose, prompt_indices=chunk)
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
