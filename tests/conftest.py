"""Shared fixtures. Real-data tests read ``$PRADA_DATA_DIR`` or ``../shared/data`` beside the repo;
tiny-model tests build a random model from a config (no downloads)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# Tests never touch the network: a hub id must fail fast instead of hanging on a download.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _shared_data_dir() -> Path | None:
    env = os.environ.get("PRADA_DATA_DIR")
    candidates = [Path(env)] if env else []
    candidates.append(REPO_ROOT.parent / "shared" / "data")
    for c in candidates:
        if (c / "raw").is_dir():
            return c
    return None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared data directory; tests that need it are skipped (loudly) when it is absent."""
    found = _shared_data_dir()
    if found is None:
        pytest.skip("shared data directory not found (set PRADA_DATA_DIR or put shared/ beside the repo)")
    return found


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random causal LM + tokenizer saved as a normal HF folder (built from a config)."""
    from prada.student.tiny import save_tiny_model

    path = tmp_path_factory.mktemp("tiny_model")
    save_tiny_model(path)
    return path
