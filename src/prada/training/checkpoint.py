"""Resumable training state and the checkpoint directories of one training run.

    out_dir/checkpoints/step-N/   Student checkpoint (+ domain_classifier.safetensors)
                                  + trainer_state.pt: optimizer, LR scheduler, RNG states of
                                  python/numpy/torch(/cuda), data position of every stream,
                                  step, elapsed time, token counts — tensors and plain Python
                                  data only, read back with ``torch.load(weights_only=True)``
    out_dir/snapshots/step-N/     Student checkpoint only (weights, for accuracy-vs-step curves)
    out_dir/final/                Student checkpoint of the finished run (written last)

Every directory is written under a temporary name and renamed into place, so a crash leaves
either the previous complete checkpoint or the new complete one, never half of one.

A run folder may come from someone else: loading a trainer state never runs code from it (a pickle
that names any function or class outside torch's tensor types is refused), and a damaged one is a
``CheckpointError`` naming the file and what to do.
"""

from __future__ import annotations

import logging
import os
import pickle
import random
import re
import shutil
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import torch

from prada.errors import CheckpointError
from prada.io import atomic_dir

logger = logging.getLogger(__name__)

TRAINER_STATE = "trainer_state.pt"
_STEP_DIR = re.compile(r"^step-(\d+)$")


def rng_state() -> dict[str, Any]:
    """The RNG states that influence training (dropout, sampling, init), as tensors and plain
    Python data (numpy's key array as a list of ints), so that loading needs no pickled class."""
    bit_generator, keys, pos, has_gauss, cached_gaussian = np.random.get_state(legacy=True)
    state = {
        "python": random.getstate(),
        "numpy": {"bit_generator": bit_generator, "keys": np.asarray(keys).tolist(), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(_as_python_rng_state(state["python"]))
    numpy_state = state["numpy"]
    if isinstance(numpy_state, dict):
        numpy_state = (numpy_state["bit_generator"], np.asarray(numpy_state["keys"], dtype=np.uint32),
                       numpy_state["pos"], numpy_state["has_gauss"], numpy_state["cached_gaussian"])
    np.random.set_state(numpy_state)  # a dict above; a tuple with an array in older checkpoints
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_python_rng_state(value: Any) -> tuple:
    """``random.setstate`` wants tuples; a list (from a JSON-like round trip) is converted."""
    version, internal, gauss = value
    return version, tuple(internal), gauss


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
    with atomic_dir(target) as tmp:
        fill(tmp)
    return target


def prune(parent: Path, keep: int) -> None:
    """Delete all but the ``keep`` newest ``step-N`` directories (keep <= 0 keeps everything)."""
    if keep <= 0:
        return
    for _, path in step_dirs(parent)[:-keep]:
        shutil.rmtree(path, ignore_errors=True)
        logger.debug("removed old checkpoint %s", path)


class BackgroundWriter:
    """Runs checkpoint writes one at a time in a background thread at the lowest CPU priority, so
    training goes on while the disk works (SmolLM2-135M's full checkpoint with its AdamW state is
    2.2 GB: 2-25 s on this project's VM).

    A job must only touch copies (``Student.checkpoint_state``, ``snapshot_tensors``), never live
    weights. ``submit`` first waits for the job before it; leaving the ``with`` block waits for the
    last one. A failed job is raised as ``CheckpointError`` at the next ``submit`` or at the exit
    (logged instead when the block is already leaving on an error).
    """

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def submit(self, job: Callable[[], None]) -> None:
        self.wait()

        def run() -> None:
            try:
                _yield_the_cpu_to_training()
                job()
            except BaseException as e:  # noqa: BLE001 - handed to the training thread
                self._error = e

        # Not a daemon: an interpreter leaving on an error still finishes the checkpoint.
        self._thread = threading.Thread(target=run, name="prada-checkpoint-writer")
        self._thread.start()

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise CheckpointError(f"writing a checkpoint failed: {type(error).__name__}: {_first_line(error)}; "
                                  "the checkpoint before it is kept") from error

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.wait()
            return
        try:
            self.wait()
        except CheckpointError as e:
            logger.error("%s", e)


def _yield_the_cpu_to_training() -> None:
    """Give the calling thread the lowest CPU priority (Linux: a thread's own nice value).

    Writing to disk costs CPU (the kernel copies ~1 GB/s into the page cache), and on a 2-core
    machine that CPU comes out of the training step's OpenMP threads, which then wait for each
    other: measured here, bf16 matmuls next to a 2.2 GB ``torch.save`` ran at 4.2 iterations/s
    with the writer at nice 0 and at 9.9-11.6/s with it at nice 19 (the write took 16-21 s and
    24-26 s). Elsewhere ``setpriority`` would renice the whole process, so it is left alone.
    """
    if sys.platform.startswith("linux"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        except OSError:  # pragma: no cover - a sandbox that forbids it
            pass


def save_trainer_state(path: Path, state: dict[str, Any]) -> None:
    torch.save(state, path)


# Older checkpoints stored numpy's RNG key array itself; these are the only globals its pickle
# names, and they rebuild an array (its contents are unpickled under the same restrictions).
_LEGACY_NUMPY_GLOBALS: list[Any] = [np.ndarray, np.dtype, type(np.dtype(np.uint32))]
try:  # numpy >= 2 (numpy 1 checkpoints name numpy.core, which is then refused with a clear error)
    from numpy._core.multiarray import _reconstruct as _numpy_reconstruct
except ImportError:  # pragma: no cover - numpy 1
    from numpy.core.multiarray import _reconstruct as _numpy_reconstruct  # type: ignore[no-redef]
_LEGACY_NUMPY_GLOBALS.append(_numpy_reconstruct)

_TRAINER_STATE_FIELDS: dict[str, type | tuple[type, ...]] = {
    "method": str, "seed": int, "config": dict, "step": int, "optimizer": dict, "scheduler": dict,
    "rng": dict, "data": dict, "elapsed_s": (int, float), "tokens": int,
}


def load_trainer_state(checkpoint_dir: Path) -> dict[str, Any]:
    """The trainer state of a checkpoint, read as data only (``weights_only=True``).

    Raises ``CheckpointError`` naming the file when it would run code (refused), cannot be read
    (damaged, truncated) or lacks a field, with what to do.
    """
    path = Path(checkpoint_dir) / TRAINER_STATE
    fix = (f"delete {checkpoint_dir} to resume from the checkpoint before it, or start over with "
           "--no-resume (prada run: delete the training folder)")
    try:
        with torch.serialization.safe_globals(_LEGACY_NUMPY_GLOBALS):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        reason = _first_line(e)
        if "weights only" in reason.lower() or "GLOBAL" in str(e):
            raise CheckpointError(
                f"{path}: refused: loading it would run code it names ({_unsupported_global(e)}); prada "
                f"reads trainer states as data only. If you did not write this file, do not trust the "
                f"folder; else {fix}"
            ) from None
        raise CheckpointError(f"{path}: cannot read the trainer state ({reason}); it is damaged; {fix}") from None
    except Exception as e:  # noqa: BLE001 - truncated zip, bad magic, ...: all mean a damaged file
        raise CheckpointError(f"{path}: cannot read the trainer state ({type(e).__name__}: {_first_line(e)}); "
                              f"it is damaged (an interrupted copy?); {fix}") from None
    wrong = [k for k, t in _TRAINER_STATE_FIELDS.items()
             if not isinstance(state, dict) or not isinstance(state.get(k), t) or isinstance(state.get(k), bool)]
    if wrong:
        raise CheckpointError(f"{path}: not a prada trainer state (missing or mistyped: {', '.join(wrong)}); {fix}")
    return state


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _unsupported_global(error: BaseException) -> str:
    """The global a refused pickle asked for, e.g. ``posix.system``, from torch's message."""
    m = re.search(r"GLOBAL ([\w.]+)", str(error))
    return m.group(1) if m else _first_line(error)
