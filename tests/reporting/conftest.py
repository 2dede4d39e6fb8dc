"""Fixtures of the reporting tests (their helpers are in ``helpers.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import make_run_dir


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return make_run_dir(tmp_path / "run")
