"""Fixtures for evaluation tests: a tiny random student and its tokenizer (helpers: ``helpers.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from prada.config import StudentConfig


@pytest.fixture(scope="session")
def tiny_student(tiny_model_dir: Path):
    from prada.student.student import load_student

    return load_student(str(tiny_model_dir), StudentConfig(model=str(tiny_model_dir)))


@pytest.fixture
def tiny_tokenizer(tiny_student):
    return tiny_student.tokenizer


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny models run fastest on one thread; on a shared CPU, more threads oversubscribe it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
