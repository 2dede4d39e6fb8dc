"""What one training run did, as a typed result: ``train()`` returns it and writes it, versioned, to
``RUN_DIR/train/{method}-seed{seed}/summary.json`` (after ``final/``: its presence means done)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prada.errors import RunDirError
from prada.io import read_json, write_json_atomic

TRAIN_SUMMARY_FORMAT = 1
"""Version of ``summary.json``; files written before it existed read as format 0."""


@dataclass(frozen=True, kw_only=True)
class TrainSummary:
    """One training run's summary. Files from older versions may lack fields: they read as None.

    >>> s = TrainSummary(method="prada", seed=0, steps=5, wall_s=1.5, final={"L_y": 0.5})
    >>> TrainSummary.from_dict(s.to_dict()) == s, s.to_dict()["format"]
    (True, 1)
    >>> TrainSummary.from_dict({"method": "ft_cot", "seed": 1, "steps": 3}).format  # written before versions
    0
    """

    method: str
    seed: int
    backbone: str | None = None
    steps: int
    """Optimizer steps trained (``train.max_steps``)."""
    wall_s: float | None = None
    """Training time in seconds, summed over resumed sessions."""
    tokens: int | None = None
    """Target tokens trained on, over all sessions."""
    tokens_per_s: float | None = None
    examples: dict[str, Any] = field(default_factory=dict)
    """``{"source": N, "source_questions": Q, "targets": {task: n}}``."""
    trainable_parameters: dict[str, int] = field(default_factory=dict)
    """Per parameter group (``backbone``, ``prompt_encoder``, ``classifier``)."""
    num_processes: int | None = None
    device: str | None = None
    mixed_precision: str | None = None
    """The precision trained in (``no``, ``bf16``, ``fp16``)."""
    mixed_precision_requested: str | None = None
    """``train.mixed_precision`` as configured (``auto`` resolves per machine)."""
    compiled: bool | None = None
    attention: str | None = None
    """The student's training attention (``train.attention`` resolved: ``model`` or ``sdpa_recompute``)."""
    effective_batch_size: int | None = None
    resumed_from_step: int | None = None
    final: dict[str, Any] = field(default_factory=dict)
    """The last step's losses and metrics (``L_y``, ``L_d``, ``domain_acc``, ``lambda``)."""
    format: int = TRAIN_SUMMARY_FORMAT

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: str = "summary") -> TrainSummary:
        """From ``summary.json``'s data; unknown keys are ignored, a missing ``format`` is 0."""
        names = {f.name for f in dataclasses.fields(cls)}
        missing = [k for k in ("method", "seed", "steps") if k not in raw]
        if missing:
            raise RunDirError(f"{where}: not a training summary (no {', '.join(missing)}); delete it and run "
                              "the same command again: training resumes from its last checkpoint")
        return cls(**{"format": 0, **{k: v for k, v in raw.items() if k in names}})

    @classmethod
    def read(cls, path: Path) -> TrainSummary:
        raw = read_json(path)
        if not isinstance(raw, dict):
            raise RunDirError(f"{path}: expected a JSON object, got {type(raw).__name__}")
        return cls.from_dict(raw, str(path))

    def write(self, path: Path) -> None:
        write_json_atomic(path, self.to_dict())
