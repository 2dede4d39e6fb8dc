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


def _fast_path_results() -> list[Path]:
    """Experiment configs whose committed results folder was made on the bf16 fast path (its saved
    config has ``eval.dtype``): those must keep pinning every later default that changes outputs."""
    out = []
    for path in sorted((CONFIGS / "experiments").glob("*.yaml")):
        saved = CONFIGS.parent / load_config(path).output_dir / "config.yaml"
        if saved.is_file() and "dtype:" in saved.read_text(encoding="utf-8").split("\neval:", 1)[-1]:
            out.append(path)
    return out


@pytest.mark.parametrize("path", _fast_path_results(), ids=lambda p: p.name)
def test_fast_path_configs_still_describe_their_committed_results(path: Path) -> None:
    """Rerunning such a config into its results folder is not refused as a different config:
    a default added since (e.g. ``eval.decode_attention``) is pinned to what the results used."""
    import yaml

    from prada.config import config_changes
    from prada.runner import _MUTABLE_KEYS

    cfg = load_config(path)
    saved = yaml.safe_load((CONFIGS.parent / cfg.output_dir / "config.yaml").read_text(encoding="utf-8"))
    assert config_changes(saved, cfg, _MUTABLE_KEYS) == []


def test_the_fast_path_results_are_found() -> None:
    assert {p.name for p in _fast_path_results()} >= {"multiarith_adversary.yaml", "multiarith_qwen15b_d4.yaml"}
