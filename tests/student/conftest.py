"""Fixtures of the student tests (helpers live in student_helpers.py)."""

from __future__ import annotations

import pytest

from prada.config import StudentConfig


@pytest.fixture(scope="session")
def student_cfg(tiny_model_dir) -> StudentConfig:
    return StudentConfig(model=str(tiny_model_dir), max_length=64, max_question_tokens=48)
