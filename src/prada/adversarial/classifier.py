"""The domain classifier θ_d: a small MLP over pooled question features, kept in fp32."""

from __future__ import annotations

import torch
from torch import nn


class DomainClassifier(nn.Module):
    """LayerNorm → Linear → ReLU → Dropout → Linear.

    Returns logits: shape ``(B,)`` (one logit, "is target") for 2 domains, ``(B, K)`` for K > 2
    domains (source = 0, targets 1..K−1). Inputs are cast to float32 whatever the backbone's dtype,
    so the adversarial loss is computed in fp32 under mixed precision too.
    """

    def __init__(self, in_dim: int, num_domains: int = 2, hidden: int = 256, dropout: float = 0.1) -> None:
        super().__init__()
        if num_domains < 2:
            raise ValueError(f"num_domains must be >= 2, got {num_domains}")
        self.num_domains = num_domains
        out_dim = 1 if num_domains == 2 else num_domains
        self.net = nn.Sequential(
            nn.LayerNorm(in_dim),
            nn.Linear(in_dim, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, out_dim),
        )
        self.float()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, D) features → (B,) logits for 2 domains, (B, K) otherwise."""
        with torch.autocast(device_type=features.device.type, enabled=False):
            logits = self.net(features.float())
        return logits.squeeze(-1) if self.num_domains == 2 else logits
