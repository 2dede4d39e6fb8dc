"""Memory-lean LM losses: the (N, vocab) logits never exist all at once.

With a 49k-token vocabulary the fp32 logits of a batch of 8 × 256 tokens are ~400 MB, and autograd
keeps them, their log-softmax and their gradient alive together — more than the activations of a
135M model under gradient checkpointing. Computing the head + cross-entropy in row chunks, each
recomputed in backward (activation checkpointing of the head), keeps one chunk's logits alive at a
time. The result equals the one-shot computation (rows are independent).

``weighted_linear_cross_entropy`` goes one step further for a bias-free linear head (the usual
case): it forms the gradients while each chunk's logits exist, so the head is not recomputed in
backward (3 head matmuls instead of 4) and nothing vocabulary-sized outlives its chunk.
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


class _WeightedLinearCrossEntropy(torch.autograd.Function):
    """``Σ_i w_i · CE(h_i · Wᵀ, y_i)`` with its gradients computed chunk by chunk in the forward pass.

    The loss is linear in the upstream gradient (a scalar), so ``∂/∂h`` and ``∂/∂W`` can be formed
    while each chunk's logits exist and scaled in backward: the head runs once forward and twice
    for the gradients (not again to recompute the logits), and no ``(N, V)`` tensor is kept.
    Under autocast the matmuls run in the autocast dtype; softmax and the accumulators are fp32.
    """

    @staticmethod
    def forward(ctx, hidden, weight, targets, token_weights, chunk_rows):
        grad_hidden = torch.empty(hidden.shape, dtype=torch.float32, device=hidden.device)  # (N, D)
        grad_weight = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device)  # (V, D)
        losses = torch.empty(hidden.shape[0], dtype=torch.float32, device=hidden.device)  # (N,)
        device = hidden.device.type
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else hidden.dtype
        # Cast once, not per chunk (autocast would cast the (V, D) head for each of the 3 matmuls
        # of every chunk: ~0.1 s of a bf16 step at 8 x 256 tokens). Same values as autocast's casts.
        w, hid = weight.to(dtype), hidden.to(dtype)
        with torch.autocast(device, enabled=False):
            for start in range(0, hidden.shape[0], chunk_rows):
                rows = slice(start, start + chunk_rows)
                h, y = hid[rows], targets[rows]  # (n, D), (n,)
                logits = torch.mm(h, w.t()).float()  # (n, V)
                lse = torch.logsumexp(logits, dim=-1)  # (n,)
                losses[rows] = lse - logits.gather(1, y[:, None]).squeeze(1)
                # d CE / d logits = softmax − onehot, times each token's weight.
                probs = logits.sub_(lse[:, None]).exp_()  # (n, V), in place: the logits are done
                probs.scatter_add_(1, y[:, None], probs.new_full((len(y), 1), -1.0))
                probs.mul_(token_weights[rows, None])
                d_logits = probs.to(dtype)  # (n, V)
                grad_hidden[rows] = torch.mm(d_logits, w)
                grad_weight.add_(torch.mm(d_logits.t(), h))  # fp32 += the (V, D) product, upcast in place
        ctx.save_for_backward(grad_hidden, grad_weight)
        ctx.dtypes = (hidden.dtype, weight.dtype)
        return (losses * token_weights).sum(), losses

    @staticmethod
    def backward(ctx, grad_total, _grad_losses):
        grad_hidden, grad_weight = ctx.saved_tensors
        hidden_dtype, weight_dtype = ctx.dtypes
        return (
            (grad_hidden * grad_total).to(hidden_dtype),
            (grad_weight * grad_total).to(weight_dtype),
            None,
            None,
            None,
        )


def weighted_linear_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    token_weights: torch.Tensor,
    chunk_rows: int = LM_LOSS_CHUNK_ROWS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(Σ_i w_i · CE_i, CE)`` for logits ``hidden @ weight.T`` — a bias-free LM head.

    hidden: (N, D) states of the positions that carry a label; weight: (V, D) the head's weight;
    targets: (N,) token ids; token_weights: (N,) fp32 (e.g. ``1 / (tokens of the example ×
    examples)`` for a per-example mean). Returns the weighted sum (a scalar with gradients) and
    the (N,) fp32 per-token losses (detached). Equal to ``(w * token_cross_entropy(...)).sum()``,
    at about 3/4 of its head FLOPs (see ``_WeightedLinearCrossEntropy``).

    >>> h, w = torch.randn(5, 4), torch.randn(7, 4)
    >>> y, tw = torch.randint(0, 7, (5,)), torch.full((5,), 0.2)
    >>> total, per_token = weighted_linear_cross_entropy(h, w, y, tw, chunk_rows=2)
    >>> torch.allclose(per_token, F.cross_entropy(h @ w.T, y, reduction="none"))
    True
    """
    total, losses = _WeightedLinearCrossEntropy.apply(hidden, weight, targets, token_weights.float(), chunk_rows)
    return total, losses.detach()
