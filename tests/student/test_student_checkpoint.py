"""Checkpoints: save -> from_checkpoint gives identical outputs, for every backbone x prompt encoder."""

from __future__ import annotations

import pytest
import torch
from student_helpers import COMBOS, ITEMS, make_student, optimise, train_batch

from prada.errors import EvaluationError
from prada.io import read_json
from prada.student.format import collate_prompts, encode_questions
from prada.student.student import (
    CHECKPOINT_FILE,
    Student,
    is_checkpoint,
    load_extra_state,
    load_student,
    read_checkpoint_meta,
)

COMBOS_ALL = [("frozen", False), *COMBOS]


@pytest.mark.parametrize(("backbone", "prompt"), COMBOS_ALL)
def test_checkpoint_round_trip(student_cfg, tmp_path, backbone, prompt):
    student = make_student(student_cfg, backbone, prompt=prompt)
    batch = train_batch(student, student_cfg)
    if backbone != "frozen" or prompt:
        optimise(student, batch, steps=2)
    head = {"layer.weight": torch.randn(3, 4), "layer.bias": torch.zeros(3)}
    path = student.save_checkpoint(tmp_path / "ckpt", method="prada", step=7, extra_state_dicts={"domain_classifier": head})

    files = {p.name for p in path.iterdir()}
    assert {CHECKPOINT_FILE, "tokenizer", "domain_classifier.safetensors"} <= files
    assert ("backbone" in files) == (backbone == "full")
    assert ("lora" in files) == (backbone == "lora")
    assert ("prompt_encoder.safetensors" in files) == prompt
    assert not list(tmp_path.glob(".*"))  # no temporary folder left behind
    meta = read_json(path / CHECKPOINT_FILE)
    assert (meta["method"], meta["backbone"], meta["step"]) == ("prada", backbone, 7)
    assert (meta["prompt_encoder"] is not None) == prompt and (meta["lora"] is not None) == (backbone == "lora")
    assert meta["student"]["model"] == str(student_cfg.model)
    assert read_checkpoint_meta(path) == meta and is_checkpoint(path)
    assert set(load_extra_state(path, "domain_classifier")) == set(head)
    if backbone != "full":  # base weights are referenced, not copied
        assert not list(path.rglob("model.safetensors"))

    loaded = Student.from_checkpoint(path)
    assert (loaded.backbone_mode, loaded.num_virtual_tokens) == (backbone, student.num_virtual_tokens)
    student.eval()
    with torch.no_grad():
        a = student(**batch, return_logits=True)
        b = loaded(**batch, return_logits=True)
    torch.testing.assert_close(b.logits, a.logits, rtol=0, atol=1e-6)
    torch.testing.assert_close(b.features, a.features, rtol=0, atol=1e-6)
    prompts = collate_prompts(encode_questions(ITEMS, loaded.tokenizer, student_cfg), loaded.tokenizer.pad_token_id)
    gen_a = student.generate(prompts["input_ids"], prompts["attention_mask"], max_new_tokens=5)
    gen_b = loaded.generate(prompts["input_ids"], prompts["attention_mask"], max_new_tokens=5)
    assert torch.equal(gen_a, gen_b)
    # the loaded student trains like the saved one did (resume)
    assert {k: len(v) for k, v in loaded.trainable_parameters().items()} == {
        k: len(v) for k, v in student.trainable_parameters().items()
    }
    # load_student accepts a checkpoint directory
    assert load_student(path).backbone_mode == backbone


def test_saving_over_an_existing_checkpoint_replaces_it(student_cfg, tmp_path):
    student = make_student(student_cfg, "frozen", prompt=True)
    student.save_checkpoint(tmp_path / "ckpt", method="ptuning_cot", step=1)
    student.save_checkpoint(tmp_path / "ckpt", method="ptuning_cot", step=2)
    assert read_checkpoint_meta(tmp_path / "ckpt")["step"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]


def test_load_student_plain_model_and_errors(student_cfg, tmp_path):
    plain = load_student(student_cfg.model, student_cfg)
    assert plain.backbone_mode == "frozen" and plain.prompt_encoder is None
    assert not any(p.requires_grad for p in plain.parameters())
    with pytest.raises(EvaluationError, match="not a prada checkpoint"):
        read_checkpoint_meta(tmp_path)
    with pytest.raises(EvaluationError, match="domain_classifier"):
        make_student(student_cfg, "frozen", prompt=True).save_checkpoint(tmp_path / "c", "ptuning_cot", 0)
        load_extra_state(tmp_path / "c", "domain_classifier")
