"""Batched decoding for evaluation and the local teacher, with a KV cache and per-row stopping.

``greedy_generate(student, prompts, ...)`` takes token-id prompts of any lengths and returns one
``Generation`` per prompt, in the input order; ``generate(..., choose=PerRowSampling(...))`` does
the same with temperature / top-p sampling, each prompt drawing from its own seeded generator (the
``hf`` teacher backend). How it spends compute:

- prompts are sorted by length (longest first), so rows decoded together have similar lengths
  and little left padding; results are put back in the input order;
- the first ``batch_size`` prompts are LEFT-padded and run through one prefill pass (virtual
  P-Tuning tokens, when the student has a prompt encoder, are inserted as embeddings right before
  each prompt; positions follow the attention mask, so padding does not shift them); then one
  token per step is decoded from the KV cache, which appends in place
  (``prada.evaluation.kv_cache``: no per-step copy of the whole cache), and whose leading padding
  each chunk of rows skips (``prada.evaluation.row_attention``);
- a row stops at an EOS id, at a stop pattern (e.g. Fine-tune-CoT's ``END``) found in the tail of
  its decoded text (decoded only after a token that can end a pattern, ``stop_candidates``), or
  after ``max_new_tokens``; finished rows are **removed from the batch and from the KV cache**
  in groups (``COMPACT_FRACTION``), and the next waiting prompts are prefilled and take their
  places (**continuous batching**: their cache rows are left-padded to the batch's length), so
  the batch stays full until the prompts run out, instead of finishing at the pace of its
  longest row. Leading columns that only finished rows used are dropped at the same time.

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
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from prada.evaluation.kv_cache import AppendOnlyCache, make_decoding_cache
from prada.evaluation.row_attention import first_used_columns, row_chunks, use_row_chunks

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
row copies the whole cache, so rows are dropped in groups rather than one by one. As many waiting
prompts then take their places (continuous batching)."""


PREFILL_ROWS = 32
"""Prompts prefilled in one pass: groups of similar length, so little padding is computed."""


OnFinished = Callable[[Sequence[tuple[int, Generation]]], None]
"""Called with each group of generations as they finish, as ``(prompt index, generation)`` pairs
(progress reporting; results handed on before the whole call returns)."""


@dataclass
class _Row:
    """One prompt being decoded."""

    index: int  # the prompt's position in the caller's list
    generated: list[int] = field(default_factory=list)
    live: bool = True
    reason: str = "length"
    text: str | None = None  # set when a stop pattern cut the text


@dataclass
class _Batch:
    """The decoding state of the rows in flight, in batch order."""

    rows: list[_Row]
    cache: Any
    mask: torch.Tensor  # (b, L) 1 = a real position, 0 = left padding
    next_pos: torch.Tensor  # (b,) the position id of each row's next token
    logits: torch.Tensor  # (b, V) each row's next-token logits


class _Model:
    """The forward passes of the decoder, with the keyword names this model's ``forward`` takes."""

    def __init__(self, student: Any, max_new_tokens: int, pad_id: int) -> None:
        self.student = student
        self.lm = student.causal_lm
        self.device = student.device
        self.max_new_tokens = max_new_tokens  # the cache's room past a prompt
        self.pad_id = pad_id
        self.n_virtual = getattr(student, "num_virtual_tokens", 0)
        # transformers >= 5.2x names the KV cache `cache` (`past_key_values` is deprecated).
        self.cache_kw = "cache" if _forward_accepts(self.lm, "cache") else "past_key_values"
        self.keeps_logits = _forward_accepts(self.lm, "logits_to_keep")
        # Whether its cache can take rows in (continuous batching, prefill in groups).
        self.appendable = isinstance(make_decoding_cache(self.lm, 1), AppendOnlyCache)
        # Steps skip each chunk of rows' left padding (prada.evaluation.row_attention).
        self.row_chunks = self.appendable and use_row_chunks(self.lm)

    def prefill(self, rows: list[_Row], prompts: Sequence[Sequence[int]]) -> _Batch:
        """One pass over ``rows``' left-padded prompts (virtual tokens first): a batch whose cache
        holds the prompts and whose logits predict each row's first new token."""
        b, device = len(rows), self.device
        width = max(len(prompts[r.index]) for r in rows)
        n_virtual = self.n_virtual
        # Each row LEFT-padded as a whole: [padding, virtual tokens, prompt] (B, V+T), so that the
        # columns a row uses are contiguous (the decoding steps skip its leading padding).
        input_ids = torch.full((b, n_virtual + width), self.pad_id, dtype=torch.long, device=device)
        mask = torch.ones((b, n_virtual + width), dtype=torch.long, device=device)
        for i, r in enumerate(rows):
            ids = prompts[r.index]
            input_ids[i, n_virtual + width - len(ids):] = torch.tensor(ids, dtype=torch.long, device=device)
            mask[i, : width - len(ids)] = 0
        embeds = self.lm.get_input_embeddings()(input_ids)  # (B, V+T, D)
        if n_virtual:
            # virtual tokens right before each prompt: positions 0..V-1 as in training
            starts = torch.tensor([width - len(prompts[r.index]) for r in rows], device=device)  # (B,)
            columns = starts[:, None] + torch.arange(n_virtual, device=device)  # (B, V)
            virtual = self.student.virtual_token_embeddings(b).to(embeds.dtype)  # (B, V, D)
            embeds = embeds.scatter(1, columns[:, :, None].expand(-1, -1, embeds.shape[-1]), virtual)
        position_ids = (mask.cumsum(dim=-1) - 1).clamp(min=0)  # (B, V+T): follow the mask
        # The last position's logits only. As an index tensor, not the int 1: the int slices a
        # strided (B, 1, D) view, which the LM head's matmul cannot fold into one GEMM, so it
        # broadcasts the whole (D, V) head weight per row (3.6 GB at batch 64 for a 49k vocabulary).
        extra = {"logits_to_keep": torch.tensor([mask.shape[1] - 1], device=device)} if self.keeps_logits else {}
        cache = make_decoding_cache(self.lm, mask.shape[1] + self.max_new_tokens)
        out = self.lm(inputs_embeds=embeds, attention_mask=mask, position_ids=position_ids, use_cache=True,
                      **{self.cache_kw: cache}, **extra)
        return _Batch(rows, _returned_cache(out), mask, position_ids[:, -1] + 1, out.logits[:, -1])

    def step(self, batch: _Batch, tokens: torch.Tensor) -> None:
        """Feed each row's next token (``(b,)``): the cache grows by one position."""
        batch.mask = torch.cat([batch.mask, batch.mask.new_ones((len(batch.rows), 1))], dim=1)  # (b, L+1)
        extra = {"row_chunks": row_chunks(batch.mask)} if self.row_chunks else {}
        out = self.lm(input_ids=tokens[:, None], attention_mask=batch.mask, position_ids=batch.next_pos[:, None],
                      use_cache=True, **{self.cache_kw: batch.cache}, **extra)
        batch.cache = _returned_cache(out)
        batch.logits = out.logits[:, -1]
        batch.next_pos = batch.next_pos + 1


def _keep_rows(batch: _Batch, keep: list[int]) -> None:
    """Drop the other rows from the batch and its cache, and the leading columns no kept row uses."""
    idx = torch.tensor(keep, dtype=torch.long, device=batch.mask.device)
    mask = batch.mask[idx]
    first_used = int(first_used_columns(mask).min())  # columns before it: padding in every kept row
    if isinstance(batch.cache, AppendOnlyCache):
        batch.cache.keep_rows(idx, drop_leading=first_used)
        mask = mask[:, first_used:]
    else:
        batch.cache.batch_select_indices(idx)
    batch.rows = [batch.rows[i] for i in keep]
    batch.mask, batch.next_pos, batch.logits = mask, batch.next_pos[idx], batch.logits[idx]


def _joined(parts: list[_Batch]) -> _Batch:
    """One batch of the rows of ``parts``, in order, their caches right-aligned by left padding
    (one copy of the caches, however many parts)."""
    if len(parts) == 1:
        return parts[0]
    length = max(p.mask.shape[1] for p in parts)
    pads = [length - p.mask.shape[1] for p in parts]
    first = parts[0]
    first.cache.append_rows([p.cache for p in parts[1:]], pads[0], pads[1:])
    mask = torch.cat([torch.nn.functional.pad(p.mask, (pad, 0)) for p, pad in zip(parts, pads)])
    return _Batch([r for p in parts for r in p.rows], first.cache, mask, torch.cat([p.next_pos for p in parts]),
                  torch.cat([p.logits for p in parts]))


@torch.no_grad()
def _decode(
    student: Any,
    prompts: Sequence[Sequence[int]],
    order: list[int],
    *,
    batch_size: int,
    max_new_tokens: int,
    eos_ids: set[int],
    pad_id: int,
    stop_re: re.Pattern[str] | None,
    stop_ids: torch.Tensor | None,
    compact: bool,
    choose: TokenChooser,
    on_finished: OnFinished | None,
) -> tuple[list[Generation], int]:
    """Decode ``prompts`` in ``order``, at most ``batch_size`` at a time; returns the generations
    in the prompts' order and the number of prefill passes."""
    tokenizer = student.tokenizer
    model = _Model(student, max_new_tokens, pad_id)
    results: list[Generation | None] = [None] * len(prompts)
    waiting = deque(order)
    batch: _Batch | None = None
    prefills = 0
    while waiting or batch is not None:
        free = batch_size - (len(batch.rows) if batch is not None else 0)
        # New prompts enter when the batch is empty or, with compaction into a cache that takes
        # rows in, when a group of finished rows has left it.
        if waiting and (batch is None or (compact and model.appendable
                                          and free >= max(1, COMPACT_FRACTION * batch_size))):
            entering = [_Row(waiting.popleft()) for _ in range(min(free, len(waiting)))]
            # Prefilled in groups of similar length (the prompts are sorted), each padded to its own
            # widest prompt: one pass over 128 prompts of 50-110 tokens would pad them all to 110.
            group = PREFILL_ROWS if model.appendable else len(entering)
            parts = [model.prefill(entering[lo: lo + group], prompts) for lo in range(0, len(entering), group)]
            prefills += len(parts)
            batch = _joined(parts if batch is None else [batch, *parts])
        assert batch is not None
        rows = batch.rows
        tokens = choose(batch.logits, [r.index for r in rows])  # (b,)
        tok_list = tokens.tolist()
        check = stop_ids[tokens.cpu()].tolist() if stop_ids is not None else [stop_re is not None] * len(rows)
        finished: list[tuple[int, Generation]] = []
        for i, row in enumerate(rows):
            if not row.live:
                continue
            t = tok_list[i]
            if t in eos_ids:
                row.reason, row.live = "eos", False
            else:
                row.generated.append(t)
                if stop_re is not None and check[i] and _stopped(row, tokenizer, stop_re):
                    row.reason, row.live = "stop", False
                elif len(row.generated) == max_new_tokens:
                    row.live = False  # reason "length"
            if not row.live:
                text = row.text if row.text is not None else tokenizer.decode(row.generated, skip_special_tokens=True)
                finished.append((row.index, _finish(results, row, text)))
        if finished and on_finished is not None:
            on_finished(finished)
        n_live = sum(r.live for r in rows)
        if n_live == 0:
            batch = None
            continue
        if compact and len(rows) - n_live >= max(1, COMPACT_FRACTION * len(rows)):
            _keep_rows(batch, [i for i, r in enumerate(rows) if r.live])
            tokens = tokens[[i for i, r in enumerate(rows) if r.live]]
        elif n_live < len(rows):  # finished rows wait in the batch: feed them padding
            tokens = tokens.masked_fill(~torch.tensor([r.live for r in rows], device=tokens.device), pad_id)
        model.step(batch, tokens)
    done = [g for g in results if g is not None]
    assert len(done) == len(prompts)  # internal invariant, not user input
    return done, prefills


def _finish(results: list[Generation | None], row: _Row, text: str) -> Generation:
    """Record ``row``'s generation in its place of ``results``."""
    gen = Generation(tuple(row.generated), text, row.reason)
    results[row.index] = gen
    return gen


def _stopped(row: _Row, tokenizer: Any, stop_re: re.Pattern[str]) -> bool:
    """Whether a stop pattern ends in the row's last tokens; if so, its text is cut after the first match."""
    tail = tokenizer.decode(row.generated[-STOP_TAIL_TOKENS:], skip_special_tokens=True)
    if not stop_re.search(tail):
        return False
    full = tokenizer.decode(row.generated, skip_special_tokens=True)
    match = stop_re.search(full)
    if match is None:  # the tail matched across a boundary the full text decodes differently
        return False
    row.text = full[: match.end()]
    return True


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
    on_finished: OnFinished | None = None,
    choose: TokenChooser = greedy_tokens,
) -> tuple[list[Generation], GenerationStats]:
    """Continuations of ``prompts`` (lists of token ids), in the input order.

    ``student`` is a ``prada.student.Student`` (``causal_lm``, ``tokenizer``, ``device`` and, with
    a prompt encoder, ``num_virtual_tokens``/``virtual_token_embeddings``). ``stop``: strings that
    end a row (alphanumeric ones as whole words); ``eos_ids``: default the tokenizer's EOS and the
    generation config's EOS ids. ``compact=False`` keeps finished rows in the batch and decodes
    one batch at a time (for comparison in the benchmark). ``on_finished`` is called with each
    group of generations as they finish (progress reporting). ``choose`` picks the next tokens
    (``greedy_tokens``, or a ``PerRowSampling`` over the prompts; it sees the prompts' indices).
    ``GenerationStats.batches``
    counts prefill passes (a batch, or a group of prompts that took finished rows' places).
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
    if any(len(p) == 0 for p in prompts):
        raise ValueError("empty prompt")
    was_training = student.training
    student.eval()
    start = time.perf_counter()
    try:
        done, prefills = _decode(student, prompts, order, batch_size=batch_size, max_new_tokens=max_new_tokens,
                                 eos_ids=eos_set, pad_id=pad_id, stop_re=stop_re, stop_ids=stop_ids, compact=compact,
                                 choose=choose, on_finished=on_finished)
    finally:
        student.train(was_training)
    seconds = time.perf_counter() - start
    return done, GenerationStats(sum(g.num_tokens for g in done), seconds, prefills)
