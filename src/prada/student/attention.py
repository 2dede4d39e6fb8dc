"""SDPA forward, batched-matmul backward: the training attention of the bf16 CPU fast path.

PyTorch's CPU flash-attention *backward* is slow for the sequences we train on: measured on the
2-core AMX machine (SmolLM2 shapes, 9 query / 3 key-value heads, head dim 64, bf16), 24 ms per
layer for 8 × 266 tokens (5× its forward) and 10–40 ms for PRADA's short target questions
(8–32 × 65–75 tokens), where the same work as batched matmuls takes 2–6 ms. This implementation
keeps SDPA's forward (and its memory: nothing is saved but q, k, v and the output) and writes the
backward as the textbook recomputation — scores, softmax, four batched matmuls — which AMX runs
at matmul speed, and which inductor fuses when the layer is compiled:

    S  = scale · Q Kᵀ + mask        P  = softmax(S)             (B, Hk, g·T, T)
    dV = Pᵀ dO      dP = dO Vᵀ      dS = scale · P ⊙ (dP − rowsum(dO ⊙ O))
    dQ = dS K       dK = dSᵀ Q

The query heads that share a key/value head (grouped-query attention, g = H / Hk of them) are
stacked along the rows, so K and V are never repeated. Scores and probabilities are bf16 matmul
outputs with fp32 softmax, as in transformers' eager attention under autocast.

It is registered with transformers as the attention implementation ``sdpa_recompute``
(``train.attention``); anything it does not cover (no gradient, dropout, soft-capping, a float
bias) goes to transformers' own ``sdpa``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

IMPLEMENTATION = "sdpa_recompute"


class _RecomputeAttention(torch.autograd.Function):
    """``(q (B,H,T,D), k/v (B,Hk,S,D), mask (B|1,1,T,S) bool | None) → out (B,H,T,D)``;
    ``mask=None`` means causal."""

    @staticmethod
    def forward(ctx: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                mask: torch.Tensor | None, scale: float) -> torch.Tensor:
        out = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, is_causal=mask is None,
                                             scale=scale, enable_gqa=True)  # (B, H, T, D)
        ctx.save_for_backward(query, key, value, out, mask)
        ctx.scale = scale
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor):
        query, key, value, out, mask = ctx.saved_tensors
        b, h, t, d = query.shape
        hk, s = key.shape[1], key.shape[2]
        g = h // hk
        q_rows = query.reshape(b, hk, g * t, d)  # the g query heads of a key/value head, stacked
        do_rows = grad_out.contiguous().reshape(b, hk, g * t, d)
        scores = (q_rows @ key.transpose(-1, -2)).view(b, hk, g, t, s).float() * ctx.scale
        allowed = mask.unsqueeze(2) if mask is not None else torch.ones(
            t, s, dtype=torch.bool, device=query.device).tril(s - t)  # (B|1,1,1,T,S) or (T,S)
        # a large finite fill: a fully masked (padding) row gets a uniform P instead of NaN; its
        # output gradient is zero, so its dS is zero either way
        probs = torch.softmax(scores.masked_fill(~allowed, -1e9), dim=-1)  # (B, Hk, g, T, S) fp32
        dprobs = (do_rows @ value.transpose(-1, -2)).view(b, hk, g, t, s).float()
        delta = (grad_out.float() * out.float()).sum(-1).view(b, hk, g, t, 1)  # rowsum(dO ⊙ O)
        dscores = (probs * (dprobs - delta) * ctx.scale).to(query.dtype).view(b, hk, g * t, s)
        probs_rows = probs.to(query.dtype).view(b, hk, g * t, s)
        grad_value = probs_rows.transpose(-1, -2) @ do_rows  # (B, Hk, S, D)
        grad_query = (dscores @ key).view(b, h, t, d)
        grad_key = dscores.transpose(-1, -2) @ q_rows  # (B, Hk, S, D)
        return grad_query, grad_key, grad_value, None, None


def recompute_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                        mask: torch.Tensor | None = None, scale: float | None = None) -> torch.Tensor:
    """Causal (``mask=None``) or boolean-masked attention with the recomputing backward.

    query (B, H, T, D); key, value (B, Hk, S, D) with H a multiple of Hk; mask (B or 1, 1, T, S),
    True where a query may attend. Returns (B, H, T, D).
    """
    if query.shape[1] % key.shape[1]:
        raise ValueError(f"{query.shape[1]} query heads are not a multiple of {key.shape[1]} key/value heads")
    if mask is not None and mask.dtype != torch.bool:
        raise ValueError(f"recompute_attention takes a boolean mask, got {mask.dtype}")
    return _RecomputeAttention.apply(query, key, value, mask, scale if scale is not None else query.shape[-1] ** -0.5)


def sdpa_recompute_forward(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                           attention_mask: torch.Tensor | None, dropout: float = 0.0,
                           scaling: float | None = None, **kwargs: Any) -> tuple[torch.Tensor, None]:
    """transformers' attention-function signature; returns ``(out (B, T, H, D), None)``."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    plain = (
        not torch.is_grad_enabled()
        or dropout > 0.0
        or kwargs.get("softcap") is not None
        or kwargs.get("position_bias") is not None
        or (attention_mask is None and query.shape[2] != key.shape[2])  # causal but not square: a cache
        or (attention_mask is not None and attention_mask.dtype != torch.bool)
        or not getattr(module, "is_causal", True)
    )
    if plain:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, **kwargs)
    out = recompute_attention(query, key, value, attention_mask, scaling)
    return out.transpose(1, 2).contiguous(), None


def register_sdpa_variant(name: str, forward: Any) -> str:
    """Register ``forward`` with transformers as the attention implementation ``name``, with
    SDPA's masks (a variant of ``sdpa``: same inputs, same mask format); returns ``name``."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    AttentionInterface.register(name, forward)
    ALL_MASK_ATTENTION_FUNCTIONS.register(name, sdpa_mask)
    return name


def register() -> str:
    """Register ``sdpa_recompute`` with transformers; returns the name."""
    return register_sdpa_variant(IMPLEMENTATION, sdpa_recompute_forward)
