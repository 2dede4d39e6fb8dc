"""Every committed config loads, and the diverse-teacher pair stays consistent."""

from __future__ import annotations

from pathlib import Path

import pytest

from prada.config import load_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("path", sorted(CONFIGS.rglob("*.yaml")), ids=lambda p: str(p.relative_to(CONFIGS)))
def test_committed_config_loads(path: Path) -> None:
    load_config(path)


def test_replay_config_matches_the_teacher_that_made_the_corpus() -> None:
    """configs/experiments/multiarith_qwen15b_d4.yaml replays what configs/teachers/... generates:
    every key the replay checks against the recorded provenance must agree."""
    teacher = load_config(CONFIGS / "teachers" / "multiarith_qwen15b_d4.yaml")
    replay = load_config(CONFIGS / "experiments" / "multiarith_qwen15b_d4.yaml")
    assert replay.teacher.backend == "replay" and teacher.teacher.backend == "hf"
    assert replay.teacher.replay_dir == f"{teacher.output_dir}/teacher/samples"
    assert replay.data.source == teacher.data.source
    for key in ("model", "prompt", "chat", "samples", "temperature", "top_p", "max_rationale_tokens", "seed"):
        assert getattr(replay.teacher, key) == getattr(teacher.teacher, key), key
