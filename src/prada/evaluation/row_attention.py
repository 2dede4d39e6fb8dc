"""Decoding attention that skips the left padding of continuous batching, chunk by chunk of rows.

With continuous batching (``prada.evaluation.generate``) every row's KV cache is right-aligned to
the batch's longest history: a row that entered late is left-padded to the width of the rows that
have been decoding for a hundred steps. SDPA reads every cached position of every row, padding
included, and reading the cache is what a decoding step's attention costs (it is bound by memory
bandwidth). Measured on the end-to-end run's FT-CoT student (751 questions, batch 128): an
average batch of 104 rows × 178 cached positions, of which 50 % were padding.

The rows of a stream are ordered by age (rows that entered together are adjacent, the newest
last), so each contiguous chunk of rows has a first column that some row of it uses, and the
columns before it are padding in the whole chunk. ``row_chunks(mask)`` plans this per step; the
attention implementation ``sdpa_row_chunks`` (registered with transformers) runs SDPA once per
chunk on the cache's columns from that point on — views, no copies. The result is SDPA's: the
skipped columns are masked in every row of the chunk. Without a plan (prefill, training, other
callers) it is transformers' ``sdpa``.

``decode_kernel`` is the same with every single-query bf16 step on CPU run by prada's fused C++
kernel instead (``prada.evaluation.decode_kernel``, ``eval.decode_attention: auto``), which skips
each row's own left padding and reads the cache ~4x faster than SDPA (30-37 against 7-9.5 GB/s).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from prada.evaluation import decode_kernel
from prada.evaluation.kv_cache import decoder_text_config

IMPLEMENTATION = "sdpa_row_chunks"
KERNEL_IMPLEMENTATION = "decode_kernel"

CHUNKS = 4
"""Row chunks per step: 4 took 30 layers' attention from 49 to 40 ms on a synthetic batch of 104
rows with 58 % valid positions (2: 43 ms, 8: 41 ms, 13: 46 ms — each chunk is one more SDPA call
per layer)."""

RowChunks = tuple[tuple[int, int, int], ...]
"""``(first row, end row, first column)`` per chunk of rows."""


def first_used_columns(mask: torch.Tensor) -> torch.Tensor:
    """Each row's first column that its attention mask (B, S) uses (S for a row that uses none): (B,)."""
    used = mask != 0  # (B, S)
    return torch.where(used.any(dim=1), used.to(torch.int8).argmax(dim=1), used.shape[1])


def row_chunks(mask: torch.Tensor, chunks: int = CHUNKS) -> RowChunks | None:
    """The chunk plan of a decoding step: ``mask`` (B, S) is the attention mask (1 = a cached
    position the row uses). Rows are split into ``chunks`` contiguous groups; each group's first
    column is the first one any of its rows uses. None when no group can skip a column."""
    b = mask.shape[0]
    first = first_used_columns(mask)  # (B,)
    bounds = [round(i * b / chunks) for i in range(chunks + 1)]
    plan = tuple((lo, hi, int(first[lo:hi].min())) for lo, hi in zip(bounds, bounds[1:]) if hi > lo)
    return plan if any(col > 0 for _, _, col in plan) else None


_UNSUPPORTED = ("softcap", "position_bias", "s_aux", "sinks")
"""Keyword arguments that change what attention computes: calls with one go to transformers' SDPA."""


def sdpa_row_chunks_forward(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                            attention_mask: torch.Tensor | None, dropout: float = 0.0,
                            scaling: float | None = None, row_chunks: RowChunks | None = None,
                            **kwargs: Any) -> tuple[torch.Tensor, None]:
    """transformers' attention-function signature; returns ``(out (B, T, H, D), None)``.

    query (B, H, 1, D), key/value (B, Hk, S, D), attention_mask (B, 1, 1, S) bool or None."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if (row_chunks is None or query.shape[2] != 1 or torch.is_grad_enabled() or dropout > 0.0
            or any(kwargs.get(k) is not None for k in _UNSUPPORTED)):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, **kwargs)
    b, h, _, d = query.shape
    hk = key.shape[1]
    grouped = query.reshape(b, hk, h // hk, d)  # (B, Hk, g, D): the query heads of a key/value head
    out = torch.empty_like(grouped)
    for lo, hi, col in row_chunks:
        mask = attention_mask[lo:hi, ..., col:] if attention_mask is not None else None
        out[lo:hi] = F.scaled_dot_product_attention(grouped[lo:hi], key[lo:hi, :, col:], value[lo:hi, :, col:],
                                                    attn_mask=mask, scale=scaling)
    return out.reshape(b, h, 1, d).transpose(1, 2), None  # (B, 1, H, D)


def decode_kernel_forward(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                          attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                          **kwargs: Any) -> tuple[torch.Tensor, None]:
    """``sdpa_row_chunks_forward`` whose single-query bf16 CPU steps go to the fused kernel.

    query (B, H, 1, D), key/value (B, Hk, S, D), attention_mask (B, 1, 1, S) bool or None;
    returns ``(out (B, 1, H, D), None)``."""
    b, h, t, d = query.shape
    hk, s = key.shape[1], key.shape[2]
    if (t != 1 or torch.is_grad_enabled() or dropout > 0.0 or query.device.type != "cpu"
            or not query.dtype == key.dtype == value.dtype == torch.bfloat16 or h % hk or not decode_kernel.supports(h // hk, d)
            or key.stride(-1) != 1 or value.stride(-1) != 1 or any(kwargs.get(k) is not None for k in _UNSUPPORTED)
            or (attention_mask is not None and (attention_mask.dtype != torch.bool
                                                or attention_mask.shape != (b, 1, 1, s)))):
        return sdpa_row_chunks_forward(module, query, key, value, attention_mask, dropout=dropout,
                                       scaling=scaling, **kwargs)
    mask = attention_mask[:, 0, 0] if attention_mask is not None else query.new_ones((b, s), dtype=torch.bool)  # (B, S)
    grouped = query.reshape(b, hk, h // hk, d)  # (B, Hk, g, D): the query heads of a key/value head
    out = decode_kernel.decode_attention(grouped, key, value, mask, scaling if scaling is not None else d ** -0.5)
    return out.reshape(b, h, 1, d).transpose(1, 2), None  # (B, 1, H, D)


def register() -> str:
    """Register ``sdpa_row_chunks`` with transformers; returns the name."""
    from prada.student.attention import register_sdpa_variant

    return register_sdpa_variant(IMPLEMENTATION, sdpa_row_chunks_forward)


def _kernel_takes_heads(config: Any) -> bool:
    """Whether the model's attention heads (from its config) are a shape the kernel takes."""
    text = decoder_text_config(config)
    heads = getattr(text, "num_attention_heads", None)
    if not heads:
        return False
    kv_heads = getattr(text, "num_key_value_heads", None) or heads
    head_dim = getattr(text, "head_dim", None) or getattr(text, "hidden_size", 0) // heads
    return heads % kv_heads == 0 and decode_kernel.supports(heads // kv_heads, head_dim)


def _switch(lm: Any, name: str, forward: Any, sources: tuple[str, ...],
            ready: Callable[[], bool] = lambda: True) -> bool:
    """Switch ``lm`` to the SDPA variant ``name`` (registered with ``forward``) when it is on one of
    ``sources`` and ``ready()`` (checked only then); True when it uses ``name`` afterwards."""
    from prada.student.attention import register_sdpa_variant

    current = getattr(getattr(lm, "config", None), "_attn_implementation", None)
    if current == name:
        return True
    if current not in sources or not hasattr(lm, "set_attn_implementation") or not ready():
        return False
    register_sdpa_variant(name, forward)
    try:
        lm.set_attn_implementation(name)
    except (ValueError, ImportError):
        return False
    return True


def use_decode_kernel(lm: Any) -> bool:
    """Switch ``lm`` from ``sdpa`` (or ``sdpa_row_chunks``) to ``decode_kernel`` when its heads are
    a shape the kernel takes and the kernel can be built here; True when it uses it. Other
    attention implementations are left alone."""
    return _switch(lm, KERNEL_IMPLEMENTATION, decode_kernel_forward, ("sdpa", IMPLEMENTATION),
                   lambda: _kernel_takes_heads(lm.config) and decode_kernel.load_kernel() is not None)


def use_row_chunks(lm: Any) -> bool:
    """Switch ``lm`` from ``sdpa`` to ``sdpa_row_chunks`` (identical unless a step passes a plan);
    True when it uses it. Models on another attention implementation are left as they are,
    ``decode_kernel`` among them: the kernel skips each row's own padding and takes no plans."""
    return _switch(lm, IMPLEMENTATION, sdpa_row_chunks_forward, ("sdpa",))
