"""The PRADA / DANN objective as pure functions (fp32, shapes and reductions spelled out).

The paper (Yin et al. 2025, after Ganin & Lempitsky 2015) writes a saddle-point objective

    E(θf, θy, θd) = (1/Ns) Σ_src L_y − λ · ( (1/Ns) Σ_src L_d + (1/Nt) Σ_tgt L_d ),

minimised over the feature extractor θf and label predictor θy, maximised over the domain
classifier θd. With a gradient reversal layer R_λ in front of the classifier this is *one descent
step* on

    total = L_y + w · L_d( classifier( R_λ(features) ) ),   L_d = mean_src L_d + mean_tgt L_d :

- θd receives ∂total/∂θd = w·∂L_d/∂θd — it *minimises* L_d (a descent on −E's second term);
- θf receives ∂L_y/∂θf − λ·w·∂L_d/∂θf — the reversal turns its part of the step into an ascent
  on λ·L_d, i.e. the features are pushed to *confuse* the classifier (a descent on E);
- θy (the LM head) sees only L_y.

As in the paper, L_d is the **sum of two per-domain means**: the source side and the target side
weigh the same whatever their batch sizes. ``domains="binary"`` (the default) pools every target
into one "target" domain (one logit); ``domains="per_target"`` labels target k as domain k (a
(1+K)-way classifier) and the target side's mean is the mean of the per-target means. λ is *not*
applied to the forward value of ``total``: it only scales the reversed gradient, so ``total``
stays comparable across steps. ``domain_acc`` is the balanced accuracy, ½(source accuracy + target
accuracy), whose chance level is 0.5 whatever the batch sizes.
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


DOMAIN_MODES = ("binary", "per_target")


def _per_example_domain_loss(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N,) fp32 losses and (N,) bool correctness for ``(N,)`` binary or ``(N, K)`` logits."""
    logits = logits.float()
    if logits.dim() == 1:
        losses = F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype), reduction="none")
        return losses, (logits > 0).long() == labels
    losses = F.cross_entropy(logits, labels, reduction="none")
    return losses, logits.argmax(dim=-1) == labels


def prada_objective(
    lm_loss: torch.Tensor,
    features_source: torch.Tensor | None = None,
    features_targets: torch.Tensor | Sequence[torch.Tensor] | None = None,
    classifier: nn.Module | None = None,
    lam: float = 0.0,
    domain_loss_weight: float = 1.0,
    domains: str = "binary",
) -> LossOutput:
    """``total = L_y + w · (mean_src L_d + mean_tgt L_d)`` with L_d on ``classifier(R_λ(features))``.

    Args:
        lm_loss: scalar L_y of the source batch (per-example mean over completion tokens, then
            batch mean — as ``Student.forward`` computes it).
        features_source: ``(Bs, D)`` pooled question features of the source batch (domain 0).
        features_targets: ``(Bt, D)`` for one target, or a sequence of ``(Bt_k, D)`` (one per
            target; an empty one is a target absent from this step).
        classifier: the domain classifier (1 logit for ``binary``, 1+K for ``per_target``);
            ``None`` (methods without an adversary) gives ``total = L_y``.
        lam: λ of the GRL at this optimizer step (scales only the reversed gradient).
        domain_loss_weight: w.
        domains: ``binary`` (source vs. all targets) or ``per_target`` (source vs. each target).

    ``parts``: ``L_y``, ``L_d`` (the sum), ``L_d_source``, ``L_d_target``; ``metrics``:
    ``domain_acc`` (balanced) and ``lambda``.
    """
    lm_loss = lm_loss.float()
    if classifier is None or features_source is None or features_targets is None:
        return LossOutput(total=lm_loss, parts={"L_y": lm_loss.detach()}, metrics={})
    if domains not in DOMAIN_MODES:
        raise ValueError(f"domains '{domains}': valid values are {list(DOMAIN_MODES)}")
    if isinstance(features_targets, torch.Tensor):
        features_targets = [features_targets]
    if features_source.shape[0] == 0 or sum(f.shape[0] for f in features_targets) == 0:
        raise ValueError("the domain loss needs at least one source and one target example")
    features = [features_source, *features_targets]
    labels = torch.cat([
        torch.full((f.shape[0],), 0 if k == 0 else (1 if domains == "binary" else k), dtype=torch.long,
                   device=f.device)
        for k, f in enumerate(features)
    ])  # (Bs + Σ Bt_k,)
    feats = torch.cat([f.float() for f in features], dim=0)  # (N, D) fp32
    losses, correct = _per_example_domain_loss(classifier(grad_reverse(feats, lam)), labels)  # (N,), (N,)
    n_src = features_source.shape[0]
    source_loss, source_acc = losses[:n_src].mean(), correct[:n_src].float().mean()
    if domains == "binary":
        target_loss, target_acc = losses[n_src:].mean(), correct[n_src:].float().mean()
    else:  # each present target weighs the same inside the target side
        bounds = torch.tensor([f.shape[0] for f in features_targets]).cumsum(0).tolist()
        spans = [(n_src + a, n_src + b) for a, b in zip([0, *bounds[:-1]], bounds) if b > a]
        target_loss = torch.stack([losses[a:b].mean() for a, b in spans]).mean()
        target_acc = torch.stack([correct[a:b].float().mean() for a, b in spans]).mean()
    l_d = source_loss + target_loss
    total = lm_loss + domain_loss_weight * l_d
    return LossOutput(
        total=total,
        parts={"L_y": lm_loss.detach(), "L_d": l_d.detach(), "L_d_source": source_loss.detach(),
               "L_d_target": target_loss.detach()},
        metrics={"domain_acc": float((source_acc + target_acc) / 2), "lambda": float(lam)},
    )
