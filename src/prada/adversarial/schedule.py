"""The DANN λ schedule (Ganin & Lempitsky 2015, §5.2.2).

λ_p = λ_max · (2 / (1 + exp(−γ·p)) − 1),  p = step / total_steps ∈ [0, 1],

advanced once per *optimizer* step (not per micro-batch). λ starts at 0 so the classifier can
learn before the reversed gradient reaches the feature extractor, and approaches λ_max
(≈ 0.99991·λ_max at p = 1 with γ = 10).

>>> dann_lambda(0, 100, 0.1)
0.0
>>> round(dann_lambda(100, 100, 0.1), 5)
0.09999
"""

from __future__ import annotations

import math


def dann_lambda(step: int, total_steps: int, lambda_max: float, gamma: float = 10.0) -> float:
    """λ at optimizer ``step`` of ``total_steps`` (p is clamped to [0, 1])."""
    if total_steps <= 0:
        raise ValueError(f"total_steps must be positive, got {total_steps}")
    p = min(max(step / total_steps, 0.0), 1.0)
    return float(lambda_max * (2.0 / (1.0 + math.exp(-gamma * p)) - 1.0))
