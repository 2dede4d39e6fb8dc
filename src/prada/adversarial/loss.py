"""The PRADA / DANN objective as pure functions (fp32, shapes and reductions spelled out).

The paper (Yin et al. 2025, after Ganin & Lempitsky 2015) writes a saddle-point objective

    E(θf, θy, θd) = (1/Ns) Σ_src L_y − λ · ( (1/Ns) Σ_src L_d + (1/Nt) Σ_tgt L_d ),

minimised over the feature extractor θf and label predictor θy, maximised over the domain
classifier θd. With a gradient reversal layer R_λ in front of the classifier this is *one descent
step* on

    total = L_y + w · L_d( classifier( R_λ(features) ) ):

- θd receives ∂total/∂θd = w·∂L_d/∂θd — it *minimises* L_d (a descent on −E's second term);
- θf receives ∂L_y/∂θf − λ·w·∂L_d/∂θf — the reversal turns its part of the step into an ascent
  on λ·L_d, i.e. the features are pushed to *confuse* the classifier (a descent on E);
- θy (the LM head) sees only L_y.

L_d here is the mean over the concatenated source and target examples of the step (a *choice*:
the paper's sum of two per-domain means equals 2 × this mean when the two batches have the same
size — the factor 2 is absorbed by ``w`` / ``λ_max``). λ is *not* applied to the forward value of
``total``: it only scales the reversed gradient, so ``total`` stays comparable across steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from prada.adversarial.grl import grad_reverse


@dataclass
class LossOutput:
    """``total`` is what ``backward`` is called on; ``parts`` are detached components (L_y, L_d);
    ``metrics`` are floats for logging (domain_acc, lambda)."""

    total: torch.Tensor
    parts: dict[str, torch.Tensor] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


def domain_loss(logits: torch.Tensor, domain_labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean domain-classification loss and accuracy, both fp32 scalars.

    - 2 domains: ``logits (B,)`` (the logit of "target"), ``domain_labels (B,)`` in {0, 1};
      binary cross-entropy with logits; predicted target iff logit > 0.
    - K domains: ``logits (B, K)``, ``domain_labels (B,)`` in {0..K−1}; cross-entropy; argmax.

    >>> loss, acc = domain_loss(torch.tensor([2.0, -1.0]), torch.tensor([1, 1]))
    >>> round(loss.item(), 4), acc.item()
    (0.7201, 0.5)
    """
    logits = logits.float()
    if logits.dim() == 1:
        target = domain_labels.to(logits.dtype)
        loss = F.binary_cross_entropy_with_logits(logits, target, reduction="mean")
        pred = (logits > 0).long()
    elif logits.dim() == 2:
        loss = F.cross_entropy(logits, domain_labels.long(), reduction="mean")
        pred = logits.argmax(dim=-1)
    else:
        raise ValueError(f"domain logits must be (B,) or (B, K), got shape {tuple(logits.shape)}")
    accuracy = (pred == domain_labels.long()).float().mean()
    return loss, accuracy


def prada_objective(
    lm_loss: torch.Tensor,
    features_source: torch.Tensor | None = None,
    features_targets: torch.Tensor | Sequence[torch.Tensor] | None = None,
    classifier: nn.Module | None = None,
    lam: float = 0.0,
    domain_loss_weight: float = 1.0,
) -> LossOutput:
    """``total = L_y + w · L_d(classifier(R_λ([f_src; f_tgt_1; …; f_tgt_{K−1}])))``.

    Args:
        lm_loss: scalar L_y of the source batch (per-example mean over completion tokens, then
            batch mean — as ``Student.forward`` computes it).
        features_source: ``(Bs, D)`` pooled question features of the source batch (domain 0).
        features_targets: ``(Bt, D)`` for one target, or a sequence of ``(Bt_k, D)`` — target k gets
            domain label k (1-based). Empty tensors are allowed for a target absent this step.
        classifier: the domain classifier; ``None`` (methods without an adversary) gives
            ``total = L_y``.
        lam: λ of the GRL at this optimizer step (scales only the reversed gradient).
        domain_loss_weight: w.
    """
    lm_loss = lm_loss.float()
    if classifier is None or features_source is None or features_targets is None:
        return LossOutput(total=lm_loss, parts={"L_y": lm_loss.detach()}, metrics={})
    if isinstance(features_targets, torch.Tensor):
        features_targets = [features_targets]
    features = [features_source, *features_targets]
    labels = torch.cat(
        [torch.full((f.shape[0],), k, dtype=torch.long, device=f.device) for k, f in enumerate(features)]
    )  # (Bs + Σ Bt_k,)
    feats = torch.cat([f.float() for f in features], dim=0)  # (N, D) fp32
    logits = classifier(grad_reverse(feats, lam))  # (N,) or (N, K)
    l_d, acc = domain_loss(logits, labels)
    total = lm_loss + domain_loss_weight * l_d
    return LossOutput(
        total=total,
        parts={"L_y": lm_loss.detach(), "L_d": l_d.detach()},
        metrics={"domain_acc": float(acc), "lambda": float(lam)},
    )
