"""Resumable training state and the checkpoint directories of one training run.

    out_dir/checkpoints/step-N/   Student checkpoint (+ domain_classifier.safetensors)
                                  + trainer_state.pt: optimizer, LR scheduler, RNG states of
                                  python/numpy/torch(/cuda), data position of every stream,
                                  step, elapsed time, token counts
    out_dir/snapshots/step-N/     Student checkpoint only (weights, for accuracy-vs-step curves)
    out_dir/final/                Student checkpoint of the finished run (written last)

Every directory is written under a temporary name and renamed into place, so a crash leaves
either the previous complete checkpoint or the new complete one, never half of one.
"""

from __future__ import annotations

import logging
import os
import random
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from prada.io import make_temp_dir, replace_dir

logger = logging.getLogger(__name__)

TRAINER_STATE = "trainer_state.pt"
_STEP_DIR = re.compile(r"^step-(\d+)$")


def rng_state() -> dict[str, Any]:
    """The RNG states that influence training (dropout, sampling, init)."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def step_dirs(parent: Path) -> list[tuple[int, Path]]:
    """Complete ``step-N`` directories under ``parent``, oldest first (temporaries are ignored)."""
    if not parent.is_dir():
        return []
    found = []
    for p in parent.iterdir():
        m = _STEP_DIR.match(p.name)
        if m and p.is_dir():
            found.append((int(m.group(1)), p))
    return sorted(found)


def latest_checkpoint(out_dir: Path) -> Path | None:
    """The newest resumable checkpoint of a run (one holding ``trainer_state.pt``), or None."""
    for _, path in reversed(step_dirs(out_dir / "checkpoints")):
        if (path / TRAINER_STATE).is_file():
            return path
    return None


def write_dir_atomic(target: Path, fill: Callable[[Path], None]) -> Path:
    """Call ``fill(tmp_dir)`` and rename ``tmp_dir`` to ``target`` (replacing an old one)."""
    tmp = make_temp_dir(target.parent, target.name)
    try:
        fill(tmp)
        for f in tmp.rglob("*"):
            if f.is_file():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
        replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def prune(parent: Path, keep: int) -> None:
    """Delete all but the ``keep`` newest ``step-N`` directories (keep <= 0 keeps everything)."""
    if keep <= 0:
        return
    for _, path in step_dirs(parent)[:-keep]:
        shutil.rmtree(path, ignore_errors=True)
        logger.debug("removed old checkpoint %s", path)


def save_trainer_state(path: Path, state: dict[str, Any]) -> None:
    torch.save(state, path)


def load_trainer_state(checkpoint_dir: Path) -> dict[str, Any]:
    # weights_only=False: the state holds numpy RNG tuples and plain Python objects we wrote.
    return torch.load(checkpoint_dir / TRAINER_STATE, map_location="cpu", weights_only=False)
