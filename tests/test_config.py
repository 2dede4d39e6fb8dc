"""The config layer: YAML mirrors the dataclasses, overrides are dotted, problems are reported
together with the closest valid name."""

from __future__ import annotations

import dataclasses

import pytest

from prada.config import (
    RunConfig,
    config_from_dict,
    dump_yaml,
    load_config,
    load_raw,
    parse_override,
    with_overrides,
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
    assert cfg.data.targets == ("addsub", "svamp")
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
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, data_dir="/explicit"))
    assert str(cfg.resolved_data_dir()) == "/explicit"


def test_scientific_notation_is_a_number_unless_quoted():
    assert parse_override("train.lr=1e-4") == ("train.lr", 1e-4)
    assert parse_override('teacher.model="1e-3"') == ("teacher.model", "1e-3")
    assert parse_override("teacher.model=gpt-4o.mini") == ("teacher.model", "gpt-4o.mini")
    assert parse_override("student.model=nan") == ("student.model", "nan")


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("train.lr=-1e-4", "train.lr: -0.0001 must be > 0"),
        ("train.lr=0", "train.lr: 0.0 must be > 0"),
        ("train.warmup_ratio=5", "train.warmup_ratio: 5.0 must be in [0, 1] (a fraction of train.max_steps)"),
        ("train.save_every=-1", "train.save_every: -1 must be >= 0"),
        ("train.keep_checkpoints=-2", "train.keep_checkpoints: -2 must be >= 0"),
        ("train.log_every=0", "train.log_every: 0 must be >= 1"),
        ("train.max_grad_norm=.inf", "train.max_grad_norm: inf is not a finite number"),
        ("teacher.max_rationale_tokens=-5", "teacher.max_rationale_tokens: -5 must be >= 1"),
        ("teacher.temperature=.nan", "teacher.temperature: nan is not a finite number"),
        ("teacher.top_p=0", "teacher.top_p: 0.0 must be in (0, 1]"),
        ("teacher.concurrency=0", "teacher.concurrency: 0 must be >= 1"),
        ("teacher.base_url=http//127.0.0.1:8000/v1", "teacher.base_url: 'http//127.0.0.1:8000/v1' must start with http"),
        ("teacher.base_url=http://", "teacher.base_url: 'http://' has no host"),
        ("teacher.base_url=http://h:port/v1", "has a malformed port"),
        ("teacher.api_key_env=sk-abc123", "teacher.api_key_env: 'sk-abc123' is not an environment variable name"),
        ("data.val_fraction=0.999", "data.val_fraction: 0.999 must be in [0, 0.5]"),
        ("data.max_source_examples=0", "data.max_source_examples: 0 must be >= 1 (or null)"),
        ("eval.batch_size=0", "eval.batch_size: 0 must be >= 1"),
        ("eval.max_new_tokens=0", "eval.max_new_tokens: 0 must be >= 1"),
        ("eval.split=tset", "eval.split: 'tset' is not one of ['train', 'val', 'test'] (did you mean 'test'?)"),
        ("eval.split=val", "eval.split: 'val' needs data.val_fraction > 0"),
        ("eval.device=gpu", "eval.device: 'gpu' is not one of auto, cpu, cuda, cuda:N"),
        ("adversarial.classifier_dropout=1", "adversarial.classifier_dropout: 1.0 must be in [0, 1)"),
        ("prompt_encoder.lr=-1", "prompt_encoder.lr: -1.0 must be > 0 (or null)"),
        ("seeds=[0, -1]", "seeds: -1 must be in [0, 4294967296)"),
        ("seeds=[1, 1]", "seeds: duplicate seeds"),
        ("methods=[ft_cot, ft_cot]", "methods: duplicate methods"),
        ("data.source=typo", "data.source: unknown task 'typo'"),
        ("data.targets=[adsub]", "data.targets: unknown task 'adsub' (did you mean 'addsub'?)"),
        ("output_dir=''", "output_dir: must not be empty"),
    ],
)
def test_every_range_is_checked_when_the_config_is_built(override, fragment):
    with pytest.raises(ConfigError) as e:
        load_config(None, ["data.targets=[addsub]", override])
    message = str(e.value)
    assert fragment in message, message
    assert "\n" not in message  # one problem: one line


def test_every_problem_is_reported_together_with_its_dotted_key():
    with pytest.raises(ConfigError) as e:
        load_config(None, ["train.lr=-1", "eval.batch_size=0", "teacher.temperature=.nan", "data.targets=[addsub]"])
    message = str(e.value)
    assert message.startswith("config: 3 problems:")
    for key in ("train.lr", "eval.batch_size", "teacher.temperature"):
        assert f"\n  - {key}: " in message


@pytest.mark.parametrize(
    ("tasks", "fragment"),
    [
        ([{"name": "mine", "path": "a.jsonl"}, {"name": "mine", "path": "b.jsonl"}],
         "data.custom_tasks[1].name: 'mine' is already the name of an earlier custom task"),
        ([{"name": "../escape", "path": "a.jsonl"}], "data.custom_tasks[0].name: '../escape' is not a valid task name"),
        ([{"name": "a/b", "path": "a.jsonl"}], "'a/b' is not a valid task name"),
        ([{"name": "gsm8k", "path": "a.jsonl"}], "data.custom_tasks[0].name: 'gsm8k' is a built-in task"),
        ([{"name": "mine", "path": ""}], "data.custom_tasks[0].path: must name a JSONL or JSON file"),
        ([{"name": "mine", "path": "a.jsonl", "test_fraction": 1.0}], "data.custom_tasks[0].test_fraction: 1.0 must be in (0, 1)"),
    ],
)
def test_custom_task_names_are_unique_identifiers(tasks, fragment):
    with pytest.raises(ConfigError) as e:
        config_from_dict({"methods": ["ft_cot"], "data": {"source": "synth_coin_flip", "custom_tasks": tasks}})
    assert fragment in str(e.value)


def test_a_custom_task_can_be_the_source_and_a_target():
    cfg = config_from_dict({"data": {"source": "mine", "targets": ["yours"], "custom_tasks": [
        {"name": "mine", "path": "a.jsonl"}, {"name": "yours", "path": "b.jsonl"}]}})
    assert cfg.data.source == "mine"


def test_credentials_in_a_url_are_never_written_but_kept_for_requests(tmp_path):
    from prada.config import config_changes, to_dict

    url = "https://me:sk-live-123@api.example.com/v1?api_key=sk-live-456&region=eu"
    cfg = load_config(None, [f"teacher.base_url={url}", "data.targets=[addsub]"])
    assert cfg.teacher.base_url == url  # the request side keeps it
    written = dump_yaml(cfg)
    assert "sk-live" not in written and "me:sk" not in written
    assert "https://api.example.com/v1?api_key=***&region=eu" in written
    assert to_dict(cfg)["teacher"]["base_url"] == "https://api.example.com/v1?api_key=***&region=eu"
    # A run folder written with the redacted URL still matches the config that holds the key.
    import yaml

    assert config_changes(yaml.safe_load(written), cfg, mutable=()) == []
    with pytest.raises(ConfigError) as e:
        load_config(None, ["teacher.base_url=ftp://me:sk-live-123@host/v1", "data.targets=[addsub]"])
    assert "sk-live" not in str(e.value) and "ftp://host/v1" in str(e.value)
    with pytest.raises(ConfigError) as e:  # a malformed URL: no scheme to anchor on
        load_config(None, ["teacher.base_url=http//me:sk-live-123@host/v1", "data.targets=[addsub]"])
    assert "sk-live" not in str(e.value) and "'http//host/v1' must start with http" in str(e.value)


def test_a_config_file_that_is_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_bytes(b"name: x\noutput_dir: caf\xe9\n")
    with pytest.raises(ConfigError, match=r"c\.yaml:2: not UTF-8 text \(byte 0xe9\)"):
        load_raw(path)


def test_every_shipped_config_is_valid():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "configs"
    paths = sorted(root.rglob("*.yaml"))
    assert len(paths) >= 10
    for path in paths:
        load_config(path)


def test_a_config_is_frozen_and_changed_only_through_validated_overrides():
    cfg = load_config(None, ["data.targets=[addsub]"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.train.lr = 1.0  # type: ignore[misc]
    changed = with_overrides(cfg, {"train.lr": 1e-3, "eval.batch_size": 4})
    assert (changed.train.lr, changed.eval.batch_size) == (1e-3, 4)
    assert cfg.train.lr == 5e-5  # the original is untouched
    assert with_overrides(cfg, ["train.max_steps=7"]).train.max_steps == 7
    with pytest.raises(ConfigError, match=r"train.lr: 0(\.0)? must be > 0"):
        with_overrides(cfg, {"train.lr": 0})
    with pytest.raises(ConfigError, match=r"unknown key 'train.sed' \(did you mean 'seeds'\?\)|unknown key 'train.sed'"):
        with_overrides(cfg, {"train.sed": 1})


def test_removed_keys_still_load_from_saved_configs_and_never_count_as_changes(caplog):
    import yaml

    from prada.config import REMOVED_KEYS, config_changes, to_dict

    assert set(REMOVED_KEYS) == {"train.seed", "train.num_workers"}
    cfg = load_config(None, ["data.targets=[addsub]"])
    saved = to_dict(cfg)
    saved["train"].update(seed=3, num_workers=2)  # as a run directory made before they were removed
    with caplog.at_level("WARNING"):
        again = config_from_dict(yaml.safe_load(yaml.safe_dump(saved)), source="old/config.yaml")
    assert again == cfg
    assert "train.seed is ignored" in caplog.text and "train.num_workers is ignored" in caplog.text
    assert saved["train"]["seed"] == 3  # the caller's data is left as it is
    assert config_changes(saved, cfg, mutable=()) == []
    assert not hasattr(cfg.train, "seed") and not hasattr(cfg.train, "num_workers")


def test_every_config_field_is_documented_where_it_is_declared():
    import ast
    import inspect

    import prada.config as config_module

    tree = ast.parse(inspect.getsource(config_module))
    undocumented = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name.endswith("Config"):
            assert ast.get_docstring(node), f"{node.name} has no docstring"
            for i, stmt in enumerate(node.body):
                if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                    nxt = node.body[i + 1] if i + 1 < len(node.body) else None
                    if not (isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                            and isinstance(nxt.value.value, str)):
                        undocumented.append(f"{node.name}.{stmt.target.id}")
    assert undocumented == []


def _with_every_list_field(tmp_path) -> RunConfig:
    task = tmp_path / "mine.jsonl"
    task.write_text('{"question": "q", "answer": "a"}\n')
    return load_config(None, [
        "methods=[ft_cot, prada]", "seeds=[0, 3]", "data.targets=[addsub, svamp]",
        f"data.custom_tasks=[{{name: mine, path: {task}}}]", "lora.target_modules=[q_proj, v_proj]",
    ])


def test_a_configs_list_fields_are_tuples_that_cannot_be_mutated(tmp_path):
    from prada.config import DataConfig, LoraConfig

    cfg = _with_every_list_field(tmp_path)
    sequences = {"methods": cfg.methods, "seeds": cfg.seeds, "data.targets": cfg.data.targets,
                 "data.custom_tasks": cfg.data.custom_tasks, "lora.target_modules": cfg.lora.target_modules}
    for key, value in sequences.items():
        assert isinstance(value, tuple), key
        with pytest.raises(AttributeError):
            value.append("x")  # type: ignore[union-attr]
        with pytest.raises(TypeError):
            value[0] = "x"  # type: ignore[index]
    # Lists given in Python are stored as tuples too.
    built = RunConfig(methods=["ft_cot"], seeds=[1], data=DataConfig(targets=["addsub"]),  # type: ignore[arg-type]
                      lora=LoraConfig(target_modules=["q_proj"]))  # type: ignore[arg-type]
    assert (built.methods, built.seeds, built.data.targets, built.lora.target_modules) == \
        (("ft_cot",), (1,), ("addsub",), ("q_proj",))
    assert with_overrides(cfg, {"seeds": [5]}).seeds == (5,)


def test_a_config_round_trips_through_config_yaml_unchanged(tmp_path):
    import yaml

    from prada.config import config_changes, to_dict

    cfg = _with_every_list_field(tmp_path)
    text = dump_yaml(cfg)
    assert "methods:\n- ft_cot\n- prada\n" in text and "tuple" not in text  # YAML lists, as before
    assert text == yaml.safe_dump(to_dict(cfg), sort_keys=False, allow_unicode=True)
    path = tmp_path / "config.yaml"
    path.write_text(text)
    again = load_config(path)
    assert again == cfg and dump_yaml(again) == text
    assert config_changes(load_raw(path), cfg, mutable=()) == []
    assert to_dict(cfg)["data"]["targets"] == ["addsub", "svamp"]


def test_exact_top_logits_is_compared_only_where_it_changes_outputs():
    from prada.config import config_changes, to_dict

    bf16 = load_config(None, ["data.targets=[addsub]", "eval.dtype=bfloat16"])
    saved = to_dict(bf16)
    del saved["eval"]["exact_top_logits"]  # a run folder made before the key existed: plain logits
    assert config_changes(saved, bf16, mutable=()) == ["eval.exact_top_logits: 0 -> 8"]
    assert config_changes(saved, with_overrides(bf16, {"eval.exact_top_logits": 0}), mutable=()) == []
    fp32 = to_dict(with_overrides(bf16, {"eval.dtype": "float32"}))
    del fp32["eval"]["exact_top_logits"]  # fp32 generation has nothing to rescore
    assert config_changes(fp32, with_overrides(bf16, {"eval.dtype": "float32"}), mutable=()) == []
    with pytest.raises(ConfigError, match="eval.exact_top_logits: -1 must be >= 0"):
        with_overrides(bf16, {"eval.exact_top_logits": -1})


def test_train_attention_is_compared_only_where_auto_can_change_it():
    from prada.config import config_changes, to_dict

    bf16 = load_config(None, ["data.targets=[addsub]", "train.mixed_precision=bf16"])
    saved = to_dict(bf16)
    del saved["train"]["attention"]  # a run folder made before the key existed: the model's attention
    assert config_changes(saved, bf16, mutable=()) == ["train.attention: 'model' -> 'auto'"]
    assert config_changes(saved, with_overrides(bf16, {"train.attention": "model"}), mutable=()) == []
    for inert in ({"train.mixed_precision": "no"}, {"train.compile": "no"}):  # auto resolves to `model`
        cfg = with_overrides(bf16, inert)
        saved = to_dict(cfg)
        del saved["train"]["attention"]
        assert config_changes(saved, cfg, mutable=()) == []


def test_activation_memory_budget_is_compared_only_where_layers_compile():
    from prada.config import config_changes, to_dict

    bf16 = load_config(None, ["data.targets=[addsub]", "train.mixed_precision=bf16",
                              "train.activation_memory_budget=0.5"])
    saved = to_dict(bf16)
    del saved["train"]["activation_memory_budget"]  # a run folder made before the key existed: 1.0
    assert config_changes(saved, bf16, mutable=()) == ["train.activation_memory_budget: 1.0 -> 0.5"]
    assert config_changes(saved, with_overrides(bf16, {"train.activation_memory_budget": 1.0}), mutable=()) == []
    for inert in ({"train.mixed_precision": "no"}, {"train.compile": "no"}):  # no compiled layers to budget
        cfg = with_overrides(bf16, inert)
        saved = to_dict(with_overrides(cfg, {"train.activation_memory_budget": 1.0}))
        assert config_changes(saved, cfg, mutable=()) == []
    compiled_fp32 = with_overrides(bf16, {"train.mixed_precision": "no", "train.compile": "yes"})
    saved = to_dict(with_overrides(compiled_fp32, {"train.activation_memory_budget": 1.0}))
    assert config_changes(saved, compiled_fp32, mutable=()) == ["train.activation_memory_budget: 1.0 -> 0.5"]
    for bad in (0, 1.5):
        with pytest.raises(ConfigError, match="train.activation_memory_budget"):
            with_overrides(bf16, {"train.activation_memory_budget": bad})


def test_decode_attention_is_compared_only_where_bf16_decoding_can_use_it():
    from prada.config import config_changes, to_dict

    bf16 = load_config(None, ["data.targets=[addsub]", "eval.dtype=bfloat16"])
    saved = to_dict(bf16)
    del saved["eval"]["decode_attention"]  # a run folder made before the key existed: SDPA
    assert config_changes(saved, bf16, mutable=()) == ["eval.decode_attention: 'sdpa' -> 'auto'"]
    assert config_changes(saved, with_overrides(bf16, {"eval.decode_attention": "sdpa"}), mutable=()) == []
    for inert in ({"eval.dtype": "float32"}, {"eval.dtype": "float16"}, {"eval.backend": "vllm"}):
        cfg = with_overrides(bf16, inert)
        saved = to_dict(cfg)
        del saved["eval"]["decode_attention"]
        assert config_changes(saved, cfg, mutable=()) == []
    with pytest.raises(ConfigError, match="eval.decode_attention"):
        with_overrides(bf16, {"eval.decode_attention": "flash"})


def test_compile_and_teacher_dtype_are_compared_only_where_they_change_outputs():
    """A run folder made before ``train.compile`` / ``teacher.dtype`` existed trained uncompiled and
    ran a local teacher in ``auto``: an fp32 run or a recorded teacher compares equal."""
    from prada.config import config_changes, to_dict

    fp32 = load_config(None, ["data.targets=[addsub]", "train.mixed_precision=no"])
    saved = to_dict(fp32)
    del saved["train"]["compile"], saved["teacher"]["dtype"]
    assert config_changes(saved, fp32, mutable=()) == []
    assert config_changes(saved, with_overrides(fp32, {"teacher.dtype": "bfloat16"}), mutable=()) == []  # replay
    assert config_changes(saved, with_overrides(fp32, {"train.compile": "yes"}), mutable=()) == [
        "train.compile: 'no' -> 'yes'"]
    bf16 = with_overrides(fp32, {"train.mixed_precision": "bf16"})  # auto compiles the layers here
    assert config_changes(saved, bf16, mutable=()) == ["train.compile: 'no' -> 'auto'",
                                                        "train.mixed_precision: 'no' -> 'bf16'"]
    hf = with_overrides(fp32, {"teacher.backend": "hf", "teacher.model": "some/teacher"})
    saved_hf = to_dict(hf)
    del saved_hf["teacher"]["dtype"]
    assert config_changes(saved_hf, hf, mutable=()) == []
    assert config_changes(saved_hf, with_overrides(hf, {"teacher.dtype": "bfloat16"}), mutable=()) == [
        "teacher.dtype: 'auto' -> 'bfloat16'"]
