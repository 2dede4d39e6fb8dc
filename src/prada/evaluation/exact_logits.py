"""Greedy choices of a bf16 model that match fp32's: each row's largest logits recomputed in fp32.

A bf16 LM head rounds every logit to 8 significant bits (steps of 0.125 at a logit of 20), so
two candidates closer than that tie or swap, and greedy decoding takes a different path from
there. Measured on a fine-tuned SmolLM2 student (200 questions, `docs/results.md`, "Precision"):
bf16 decoding gave the fp32 answer on 123 questions; with only the residual stream kept in fp32
126; with the top 8 logits of every step recomputed in fp32, 162. The rounding of the logits,
not of the hidden states, is what changes most answers.

``exact_top_logits(lm, fp32_head_weight, k)`` hooks the LM head: it keeps an fp32 copy of the
head's weight (taken before the model is cast) and, after every head call, replaces each row's
``k`` largest logits by their fp32 values computed from the head's input. The argmax over the
result is the fp32 head's argmax on the same hidden state (unless it lies outside the bf16 top
``k``: within a few rounding steps of the maximum, which ``k = 8`` covers). The other logits
stay as the bf16 head rounded them (cast to fp32), which changes a sampled distribution by less
than the rounding did.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.hooks import RemovableHandle


def exact_top_logits(lm: Any, head_weight: torch.Tensor, k: int,
                     head_bias: torch.Tensor | None = None) -> RemovableHandle:
    """Hook ``lm``'s output embeddings (LM head) so its ``k`` largest logits per row are exact fp32.

    ``head_weight``: ``(V, D)``, the head's weight before the model was cast to a lower precision
    (and ``head_bias``, if the head has one). Returns the hook's handle (``.remove()`` undoes it).
    """
    if k < 1:
        raise ValueError("k must be >= 1")
    head = lm.get_output_embeddings()
    if head is None:
        raise ValueError("the model has no output embeddings (LM head) to hook")
    weight = head_weight.detach().to(torch.float32)  # (V, D)
    bias = head_bias.detach().to(torch.float32) if head_bias is not None else None

    def rescore(module: Any, inputs: tuple[torch.Tensor, ...], logits: torch.Tensor) -> torch.Tensor:
        hidden = inputs[0]  # (..., D)
        top = logits.topk(min(k, logits.shape[-1]), dim=-1).indices  # (..., k)
        with torch.autocast(hidden.device.type, enabled=False):
            exact = torch.einsum("...d,...kd->...k", hidden.float(), weight[top])  # (..., k)
            if bias is not None:
                exact = exact + bias[top]
        # in place into the fp32 copy: an out-of-place scatter would copy the (B, V) logits again
        return logits.float().scatter_(-1, top, exact)

    return head.register_forward_hook(rescore)
