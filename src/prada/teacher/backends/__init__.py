"""Teacher backends behind one small interface (``TeacherBackend``), and their registry.

>>> sorted(BACKENDS)
['gold', 'hf', 'openai', 'replay', 'vllm']
>>> get_backend_factory("gpt")
Traceback (most recent call last):
...
prada.errors.TeacherError: unknown teacher.backend 'gpt'; valid: gold, hf, openai, replay, vllm
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from prada.config import TeacherConfig
from prada.errors import TeacherError
from prada.teacher.backends.base import (
    Message,
    OnResult,
    Prompt,
    Request,
    Result,
    Sampling,
    Stage,
    TeacherBackend,
    Usage,
)

__all__ = [
    "BACKENDS",
    "BackendContext",
    "Message",
    "OnResult",
    "Prompt",
    "Request",
    "Result",
    "Sampling",
    "Stage",
    "TeacherBackend",
    "Usage",
    "get_backend",
    "get_backend_factory",
]


@dataclass(frozen=True)
class BackendContext:
    """What a backend may need besides ``TeacherConfig``."""

    task: str
    trigger: str
    data_dir: Path | None


Factory = Callable[[TeacherConfig, BackendContext], TeacherBackend]


def _openai(cfg: TeacherConfig, ctx: BackendContext) -> TeacherBackend:
    from prada.teacher.backends.openai_backend import OpenAIBackend

    return OpenAIBackend(
        cfg.model,
        base_url=cfg.base_url,
        api_key_env=cfg.api_key_env,
        concurrency=cfg.concurrency,
        request_timeout=cfg.request_timeout,
        backoff_base_s=cfg.backoff_base_s,
        backoff_max_s=cfg.backoff_max_s,
        max_retries=cfg.max_retries,
        use_n=cfg.use_n,
        seed=cfg.seed,
    )


def _hf(cfg: TeacherConfig, ctx: BackendContext) -> TeacherBackend:
    from prada.teacher.backends.hf import HFBackend

    return HFBackend(cfg.model, batch_size=cfg.batch_size, seed=cfg.seed, dtype=cfg.dtype)


def _vllm(cfg: TeacherConfig, ctx: BackendContext) -> TeacherBackend:
    from prada.teacher.backends.vllm_backend import VLLMBackend

    return VLLMBackend(cfg.model, seed=cfg.seed)


def _replay(cfg: TeacherConfig, ctx: BackendContext) -> TeacherBackend:
    from prada.teacher.backends.replay import ReplayBackend

    return ReplayBackend(cfg.model, task=ctx.task, trigger=ctx.trigger, data_dir=ctx.data_dir,
                         prompt=cfg.prompt, replay_dir=cfg.replay_dir)


def _gold(cfg: TeacherConfig, ctx: BackendContext) -> TeacherBackend:
    from prada.teacher.backends.gold import GoldBackend

    return GoldBackend()


BACKENDS: dict[str, Factory] = {
    "openai": _openai,
    "hf": _hf,
    "vllm": _vllm,
    "replay": _replay,
    "gold": _gold,
}
"""Registry: ``teacher.backend`` name -> factory. Backends import their heavy dependencies lazily."""


def get_backend_factory(name: str) -> Factory:
    """The factory of backend ``name``; a ``TeacherError`` listing the valid names otherwise."""
    try:
        return BACKENDS[name]
    except KeyError:
        close = difflib.get_close_matches(str(name), list(BACKENDS), n=1, cutoff=0.5)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise TeacherError(f"unknown teacher.backend '{name}'{hint}; valid: {', '.join(sorted(BACKENDS))}") from None


def get_backend(cfg: TeacherConfig, ctx: BackendContext) -> TeacherBackend:
    """Build the backend named by ``cfg.backend`` (checks keys/models/dependencies up front)."""
    return get_backend_factory(cfg.backend)(cfg, ctx)
