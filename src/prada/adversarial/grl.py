"""Gradient reversal layer R_λ (Ganin & Lempitsky 2015).

Forward: R(x) = x. Backward: dR/dx = −λ·I. λ is an argument — the caller computes it from the
optimizer step (``prada.adversarial.schedule.dann_lambda``); nothing here counts steps.

>>> import torch
>>> x = torch.ones(2, requires_grad=True)
>>> grad_reverse(x, 0.5).sum().backward()
>>> x.grad
tensor([-0.5000, -0.5000])
"""

from __future__ import annotations

import torch


class GradReverse(torch.autograd.Function):
    """Identity forward; multiplies the incoming gradient by −λ backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, lam: float) -> torch.Tensor:
        ctx.lam = float(lam)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        return -ctx.lam * grad_output, None  # no gradient for λ


def grad_reverse(x: torch.Tensor, lam: float) -> torch.Tensor:
    """R_λ(x): ``x`` unchanged forward, gradient ``−lam · grad`` backward."""
    return GradReverse.apply(x, lam)
