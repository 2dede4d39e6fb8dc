"""The config layer: YAML mirrors the dataclasses, overrides are dotted, problems are reported
together with the closest valid name."""

from __future__ import annotations

import pytest

from prada.config import (
    RunConfig,
    config_from_dict,
    dump_yaml,
    load_config,
    load_raw,
    parse_override,
)
from prada.errors import ConfigError


def test_defaults_are_valid_and_round_trip_through_yaml(tmp_path):
    cfg = load_config(None, ["data.targets=[addsub]"])
    path = tmp_path / "c.yaml"
    path.write_text(dump_yaml(cfg))
    assert load_config(path) == cfg


def test_overrides_are_typed_and_nested():
    cfg = load_config(
        None,
        ["train.lr=1e-4", "train.max_steps=7", "data.targets=[addsub, svamp]", "train.backbone=lora",
         "prompt_encoder.lr=null", "teacher.chat=true"],
    )
    assert cfg.train.lr == pytest.approx(1e-4) and isinstance(cfg.train.lr, float)
    assert cfg.train.max_steps == 7
    assert cfg.data.targets == ["addsub", "svamp"]
    assert cfg.train.backbone == "lora"
    assert cfg.prompt_encoder.lr is None
    assert cfg.teacher.chat is True


def test_unknown_keys_are_all_reported_with_closest_name():
    with pytest.raises(ConfigError) as e:
        config_from_dict({"trian": {}, "train": {"lrr": 1.0}, "data": {"targets": ["addsub"]}})
    msg = str(e.value)
    assert "unknown key 'trian'" in msg and "did you mean 'train'" in msg
    assert "unknown key 'train.lrr'" in msg and "did you mean 'lr'" in msg


def test_an_unquoted_yaml_no_is_the_word_where_the_key_takes_words(tmp_path):
    """YAML 1.1 reads `mixed_precision: no` as False; accelerate's own spelling must still work."""
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  targets: [addsub]\ntrain:\n  mixed_precision: no\n")
    assert load_config(path).train.mixed_precision == "no"
    assert load_config(None, ["data.targets=[addsub]", "train.mixed_precision=no"]).train.mixed_precision == "no"
    with pytest.raises(ConfigError, match=r"train.backbone: True is not one of"):
        load_config(None, ["data.targets=[addsub]", "train.backbone=yes"])  # no word of 'yes' there


def test_bad_values_name_the_key_and_valid_set():
    with pytest.raises(ConfigError) as e:
        load_config(None, ["train.backbone=frozn", "train.max_steps=ten", "data.targets=[addsub]"])
    msg = str(e.value)
    assert "train.backbone" in msg and "'frozen'" in msg
    assert "train.max_steps: expected an integer" in msg


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        (["methods=[pradaa]", "data.targets=[addsub]"], "unknown method 'pradaa'"),
        (["data.source=addsub", "data.targets=[addsub]"], "cannot also be a target"),
        (["methods=[prada]"], "need at least one target"),
        (["data.targets=[svamp, svamp]"], "duplicate targets"),
    ],
)
def test_semantic_checks(overrides, fragment):
    with pytest.raises(ConfigError, match=fragment):
        load_config(None, overrides)


def test_malformed_yaml_names_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  lr: 1\n  batch_size: [1,\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml:\d+: malformed YAML"):
        load_raw(path)


def test_missing_file_and_bad_override():
    with pytest.raises(ConfigError, match="config file not found"):
        load_config("/nonexistent/cfg.yaml")
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_override("train.lr")


def test_data_dir_resolution(monkeypatch, tmp_path):
    cfg = RunConfig()
    monkeypatch.delenv("PRADA_DATA_DIR", raising=False)
    assert cfg.resolved_data_dir() is None
    monkeypatch.setenv("PRADA_DATA_DIR", str(tmp_path))
    assert cfg.resolved_data_dir() == tmp_path
    cfg.data.data_dir = "/explicit"
    assert str(cfg.resolved_data_dir()) == "/explicit"


def test_scientific_notation_is_a_number_unless_quoted():
    assert parse_override("train.lr=1e-4") == ("train.lr", 1e-4)
    assert parse_override('teacher.model="1e-3"') == ("teacher.model", "1e-3")
    assert parse_override("teacher.model=gpt-4o.mini") == ("teacher.model", "gpt-4o.mini")
    assert parse_override("student.model=nan") == ("student.model", "nan")
