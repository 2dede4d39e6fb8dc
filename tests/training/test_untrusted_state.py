"""A run folder may come from someone else: resuming from it never runs code, and a damaged trainer
state is one error naming the file, with nothing changed."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from prada.errors import CheckpointError
from prada.training import checkpoint as ckpt
from prada.training import train


class _WritesAMarker:
    """Unpickling this runs ``touch MARKER`` (what a hostile trainer_state.pt would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_trainer_state_that_would_run_code_is_refused_and_nothing_changes(make_cfg, corpus, tmp_path):
    cfg = make_cfg("train.save_every=2", "train.max_steps=3")
    out = tmp_path / "run"
    train(cfg, "ft_cot", 0, out, corpus)
    # An interrupted run, whose latest checkpoint was replaced by a hostile file.
    import shutil

    shutil.rmtree(out / "final")
    (out / "summary.json").unlink()
    marker = tmp_path / "pwned"
    torch.save({"method": "ft_cot", "payload": _WritesAMarker(marker)}, out / "checkpoints" / "step-2" / ckpt.TRAINER_STATE)
    before = _snapshot(out)
    with pytest.raises(CheckpointError) as e:
        train(cfg, "ft_cot", 0, out, corpus, resume=True)
    assert not marker.exists()
    message = str(e.value)
    assert "trainer_state.pt: refused" in message and "posix.system" in message and "\n" not in message
    assert _snapshot(out) == before


def test_a_truncated_trainer_state_names_the_file_and_what_to_do(tmp_path):
    folder = tmp_path / "step-4"
    folder.mkdir()
    state = {"method": "ft", "seed": 0, "config": {}, "step": 4, "optimizer": {}, "scheduler": {}, "rng": ckpt.rng_state(),
             "data": {}, "elapsed_s": 1.0, "tokens": 10}
    ckpt.save_trainer_state(folder / ckpt.TRAINER_STATE, state)
    data = (folder / ckpt.TRAINER_STATE).read_bytes()
    (folder / ckpt.TRAINER_STATE).write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"step-4/trainer_state\.pt: cannot read the trainer state .* damaged.*"
                                              r"delete .*step-4 to resume from the checkpoint before it"):
        ckpt.load_trainer_state(folder)
    torch.save({"method": "ft"}, folder / ckpt.TRAINER_STATE)
    with pytest.raises(CheckpointError, match=r"not a prada trainer state \(missing or mistyped: seed, config"):
        ckpt.load_trainer_state(folder)


def test_the_rng_state_round_trips_as_plain_data_and_older_numpy_states_still_load(tmp_path):
    state = {"method": "ft", "seed": 0, "config": {}, "step": 1, "optimizer": {}, "scheduler": {}, "data": {},
             "elapsed_s": 0.0, "tokens": 0}
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    ckpt.save_trainer_state(tmp_path / ckpt.TRAINER_STATE, {**state, "rng": ckpt.rng_state()})
    expected = (random.random(), np.random.rand(), torch.rand(1))
    ckpt.set_rng_state(ckpt.load_trainer_state(tmp_path)["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1)) == expected
    # Checkpoints written before: numpy's key array itself (an allow-listed array, no code).
    legacy = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    ckpt.save_trainer_state(tmp_path / ckpt.TRAINER_STATE, {**state, "rng": legacy})
    expected = np.random.rand()
    ckpt.set_rng_state(ckpt.load_trainer_state(tmp_path)["rng"])
    assert np.random.rand() == expected
