"""Inputs are checked before any model is loaded; every error says what is wrong and how to fix it."""

from __future__ import annotations

import dataclasses
import json

import pytest
from training_helpers import SOURCE, write_corpus

from prada.config import with_overrides
from prada.errors import ConfigError, TrainingError
from prada.training import train
from prada.training.data import load_source


@pytest.fixture
def no_model(monkeypatch):
    """Validation must fail before the (slow) model load."""

    def boom(*a, **k):
        raise AssertionError("the model was loaded before validation failed")

    monkeypatch.setattr("prada.training.loop.build_student", boom)


def test_unknown_method_lists_valid_ones(make_cfg, corpus, tmp_path, no_model):
    with pytest.raises(TrainingError, match=r"unknown method 'prda' \(did you mean 'prada'\?\).*ft_cot"):
        train(make_cfg(), "prda", 0, tmp_path, corpus)


def test_unknown_backbone_mode(make_cfg):
    # The config is frozen: a change goes through the config layer, which refuses it (train() never
    # sees such a config).
    with pytest.raises(ConfigError, match=r"train.backbone: 'adapter' is not one of \['frozen', 'lora', 'full'\]"):
        with_overrides(make_cfg(), ["train.backbone=adapter"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        make_cfg().train.backbone = "adapter"  # type: ignore[misc]


def test_unknown_config_key_is_reported_by_the_config_layer(make_cfg):
    with pytest.raises(ConfigError, match=r"unknown key 'train.max_step' \(did you mean 'max_steps'\?\)"):
        make_cfg("train.max_step=3")


def test_target_equal_to_source(make_cfg):
    with pytest.raises(ConfigError, match="cannot also be a target"):
        with_overrides(make_cfg(), {"data.targets": [SOURCE]})


def test_target_without_train_split(make_cfg, corpus, tmp_path, no_model, monkeypatch):
    class TestOnly:
        def splits(self):
            return ("test",)

    monkeypatch.setattr("prada.data.tasks.get_task", lambda name, cfg=None: TestOnly())
    with pytest.raises(TrainingError, match=r"has no train split \(splits: \['test'\]\)"):
        train(make_cfg(), "dann_cot", 0, tmp_path, corpus)


def test_empty_or_missing_corpus(make_cfg, tmp_path, no_model):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(TrainingError, match="teacher corpus is empty"):
        train(make_cfg(), "ft_cot", 0, tmp_path / "out", empty)
    with pytest.raises(TrainingError, match="teacher corpus not found"):
        train(make_cfg(), "ft_cot", 0, tmp_path / "out", tmp_path / "missing.jsonl")


def test_corpus_of_another_source(make_cfg, tmp_path, no_model):
    corpus = write_corpus(tmp_path / "c.jsonl", task="synth_coin_flip", n=2)
    with pytest.raises(TrainingError, match=r"records of \['synth_coin_flip'\], but data.source is"):
        train(make_cfg(), "ft_cot", 0, tmp_path / "out", corpus)


def test_frozen_backbone_without_prompt_encoder_has_nothing_to_train(make_cfg, corpus, tmp_path, no_model):
    with pytest.raises(TrainingError, match="nothing to train"):
        train(make_cfg("train.backbone=frozen"), "ft_cot", 0, tmp_path, corpus)


def test_adversarial_method_needs_a_target(make_cfg, corpus, tmp_path, no_model):
    # A grid with an adversarial method is refused when the config is built; a method trained
    # outside the grid (`prada train --method prada`) is refused by train() before the model load.
    with pytest.raises(ConfigError, match="need at least one target"):
        make_cfg("data.targets=[]")
    cfg = make_cfg("data.targets=[]", "methods=[ft_cot]")
    with pytest.raises(ConfigError, match="needs at least one target"):
        train(cfg, "prada", 0, tmp_path, corpus)


def test_diverse_false_keeps_the_first_rationale_per_question(tmp_path):
    corpus = write_corpus(tmp_path / "c.jsonl", n=3, samples=3)
    assert len(load_source(corpus, SOURCE, diverse=True)) == 9
    first = load_source(corpus, SOURCE, diverse=False)
    assert len(first) == 3 and all(r["sample_index"] == 0 for r in first)


def test_overlong_sequences_are_truncated_with_a_warning(make_cfg, tmp_path, caplog):
    corpus = tmp_path / "c.jsonl"
    long = {"example_id": "x/0", "dataset": SOURCE, "question": "Take the last letters of \"a b\".",
            "answer": "ab", "rationale": "The last letter " * 300, "sample_index": 0}
    corpus.write_text(json.dumps(long) + "\n")
    cfg = make_cfg("train.max_steps=1", "student.max_length=4096", "train.backbone=full")
    with caplog.at_level("WARNING"):
        summary = train(cfg, "ft_cot", 0, tmp_path / "out", corpus)
    text = caplog.text
    assert "exceeds the model's context of 512 tokens" in text
    assert "training examples exceed student.max_length=512" in text
    assert summary.steps == 1
