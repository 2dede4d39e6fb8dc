"""Fixtures of the training tests: a tiny random student, a small teacher corpus built from a
synthetic task's gold rationales, and a config factory (everything tiny, CPU, seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from training_helpers import SOURCE, TARGET, write_corpus

from prada.config import RunConfig, load_config


@pytest.fixture(autouse=True)
def _few_threads():
    # The machine is shared: tiny models gain nothing from many threads.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus") / "corpus.jsonl")


@pytest.fixture
def make_cfg(tiny_model_dir: Path):
    """``make_cfg("train.max_steps=3", ...)`` → a tiny RunConfig (dotted overrides win)."""

    def make(*overrides: str) -> RunConfig:
        base = [
            f"student.model={tiny_model_dir}",
            "student.max_length=96",
            f"data.source={SOURCE}",
            f"data.targets=[{TARGET}]",
            "data.max_target_examples=32",
            "prompt_encoder.num_virtual_tokens=4",
            "prompt_encoder.hidden_size=16",
            "adversarial.classifier_hidden=16",
            "lora.r=4",
            "train.batch_size=4",
            "train.max_steps=3",
            "train.lr=1e-3",
            "train.warmup_ratio=0.0",
            # The exact fp32 reference path: the tests compare weights and losses bit for bit or
            # near it. The bf16 fast path has its own tests (test_precision.py).
            "train.mixed_precision=no",
            "eval.dtype=float32",
        ]
        return load_config(None, [*base, *overrides])

    return make
