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


@pytest.mark.parametrize(("backbone", "prompt"), COMBOS)
def test_checkpoint_state_is_written_as_it_was_when_taken(student_cfg, tmp_path, backbone, prompt):
    """A background checkpoint writer saves ``checkpoint_state()`` while training goes on: the
    files hold the weights of the moment it was taken, the same files a direct save gives then."""
    from safetensors.torch import load_file

    student = make_student(student_cfg, backbone, prompt=prompt)
    batch = train_batch(student, student_cfg)
    optimise(student, batch, steps=1)
    student.save_checkpoint(tmp_path / "direct", method="prada", step=1)
    state = student.checkpoint_state()
    optimise(student, batch, steps=2)  # training goes on; in-place updates must not reach `state`
    student.save_checkpoint(tmp_path / "from_state", method="prada", step=1, state=state)

    direct = sorted(p.relative_to(tmp_path / "direct") for p in (tmp_path / "direct").rglob("*.safetensors"))
    assert direct == sorted(p.relative_to(tmp_path / "from_state") for p in (tmp_path / "from_state").rglob("*.safetensors"))
    assert direct, "nothing trained was saved"
    for rel in direct:
        a, b = load_file(tmp_path / "direct" / rel), load_file(tmp_path / "from_state" / rel)
        assert a.keys() == b.keys(), rel  # tied weights stay tied: no extra key
        assert all(torch.equal(a[k], b[k]) for k in a), rel
    live = student.save_checkpoint(tmp_path / "live", method="prada", step=3)
    assert any(not torch.equal(load_file(tmp_path / "direct" / rel)[k], load_file(live / rel)[k])
               for rel in direct for k in load_file(live / rel))


def test_snapshot_tensors_copies_trained_tensors_and_shares_frozen_ones():
    from prada.student.student import snapshot_tensors

    frozen = torch.nn.Parameter(torch.ones(3), requires_grad=False)
    trained = torch.nn.Parameter(torch.ones(2, 3))
    state = {"a": trained, "tied": trained, "frozen": frozen, "step": torch.tensor(4.0), "nested": [{"lr": 0.1}]}
    copy = snapshot_tensors(state)
    with torch.no_grad():
        trained.add_(1.0)
        state["step"].add_(1.0)
    assert torch.equal(copy["a"], torch.ones(2, 3)) and copy["step"].item() == 4.0
    assert copy["a"] is copy["tied"]  # one storage, one copy
    assert copy["frozen"].data_ptr() == frozen.data_ptr()  # never changed by training: shared
    assert copy["nested"] == [{"lr": 0.1}] and copy["nested"] is not state["nested"]


def test_checkpoint_state_keeps_tied_embeddings_tied(student_cfg, tmp_path):
    from safetensors.torch import load_file

    from prada.student.tiny import build_tiny_model

    base = Student.build(student_cfg, "full")
    tied = build_tiny_model(len(base.tokenizer), tie_embeddings=True)
    student = Student(tied, base.tokenizer, student_cfg, "full")
    assert student.causal_lm.lm_head.weight is student.causal_lm.get_input_embeddings().weight
    student.save_checkpoint(tmp_path / "direct", method="ft_cot", step=1)
    student.save_checkpoint(tmp_path / "from_state", method="ft_cot", step=1, state=student.checkpoint_state())
    a = load_file(tmp_path / "direct/backbone/model.safetensors")
    b = load_file(tmp_path / "from_state/backbone/model.safetensors")
    assert "lm_head.weight" not in a and a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
