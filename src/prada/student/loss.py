"""Memory-lean LM loss: the (N, vocab) logits never exist all at once.

With a 49k-token vocabulary the fp32 logits of a batch of 8 × 256 tokens are ~400 MB, and autograd
keeps them, their log-softmax and their gradient alive together — more than the activations of a
135M model under gradient checkpointing. Computing the head + cross-entropy in row chunks, each
recomputed in backward (activation checkpointing of the head), keeps one chunk's logits alive at a
time. The result equals the one-shot computation (rows are independent).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

LM_LOSS_CHUNK_ROWS = 512
"""Rows (target tokens) per chunk: 512 × 49k fp32 logits ≈ 100 MB."""


def token_cross_entropy(
    head: Callable[[torch.Tensor], torch.Tensor],
    hidden: torch.Tensor,
    targets: torch.Tensor,
    chunk_rows: int = LM_LOSS_CHUNK_ROWS,
) -> torch.Tensor:
    """Per-token cross-entropy of ``head(hidden)`` against ``targets``.

    head: maps (n, D) hidden states to (n, V) fp32 logits.
    hidden: (N, D) hidden states of the positions that carry a label; targets: (N,) token ids.
    Returns (N,) fp32 losses.
    """

    def chunk_loss(h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(head(h), y, reduction="none")

    if hidden.shape[0] <= chunk_rows or not torch.is_grad_enabled():
        return chunk_loss(hidden, targets)
    parts = [
        checkpoint(chunk_loss, h, y, use_reentrant=False)
        for h, y in zip(hidden.split(chunk_rows), targets.split(chunk_rows), strict=True)
    ]
    return torch.cat(parts)
