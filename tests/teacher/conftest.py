"""Fixtures of the teacher tests: a loopback OpenAI-compatible server (fake_server.py), a small
arithmetic task, fast back-off."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fake_server import FakeOpenAIServer  # noqa: E402
from teacher_helpers import ArithTask, arith_examples, arith_records  # noqa: E402


@pytest.fixture
def arith_task() -> ArithTask:
    return ArithTask(arith_examples(12))


@pytest.fixture
def arith_jsonl(tmp_path: Path) -> Path:
    path = tmp_path / "arith.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in arith_records(30)))
    return path


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as srv:
        yield srv


@pytest.fixture(autouse=True)
def _fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRADA_TEACHER_BACKOFF_BASE_S", "0.002")
    monkeypatch.setenv("PRADA_TEACHER_BACKOFF_MAX_S", "0.02")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Tiny models run faster on one thread, above all on a shared, busy machine."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
