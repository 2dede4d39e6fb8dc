"""Backbone modes (what trains, what stays bit-identical), overfitting, generation."""

from __future__ import annotations

import pytest
import torch
from student_helpers import ITEMS, make_student, optimise, train_batch

from prada.student.format import collate_prompts, encode_questions


def _snapshot(student) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in student.named_parameters()}


@pytest.mark.parametrize(("backbone", "prompt"), [("frozen", True), ("lora", False), ("lora", True), ("full", True)])
def test_only_the_trainable_set_changes(student_cfg, backbone, prompt):
    student = make_student(student_cfg, backbone, prompt=prompt)
    groups = student.trainable_parameters()
    trainable = {name for name, p in student.named_parameters() if p.requires_grad}
    group_ids = {id(p) for g in groups.values() for p in g}
    assert group_ids == {id(p) for _, p in student.named_parameters() if p.requires_grad}
    pe_names = {n for n, _ in student.named_parameters() if n.startswith("prompt_encoder.")}
    assert (len(groups["prompt_encoder"]) > 0) == prompt and pe_names <= trainable
    if backbone == "frozen":
        assert groups["backbone"] == [] and all(not p.requires_grad for p in student.backbone.parameters())
        assert trainable == pe_names
    elif backbone == "lora":
        assert trainable - pe_names == {n for n, _ in student.named_parameters() if "lora_" in n}
        assert len(trainable - pe_names) == 2 * 7 * 2  # A and B of 7 linear layers x 2 layers ("all-linear")
    else:
        assert trainable == {n for n, _ in student.named_parameters()}
    counts = student.num_parameters()
    assert counts["trainable_backbone"] + counts["prompt_encoder"] == sum(
        p.numel() for p in student.parameters() if p.requires_grad
    )

    before = _snapshot(student)
    optimise(student, train_batch(student, student_cfg), steps=3)
    after = _snapshot(student)
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    assert changed <= trainable
    for name in before:
        if name not in trainable:
            assert torch.equal(before[name], after[name]), f"{name} moved although frozen"
    if prompt:
        assert pe_names & changed
    if backbone == "lora":
        assert {n for n in changed if "lora_B" in n} == {n for n in trainable if "lora_B" in n}
    if backbone == "full":
        assert {n for n in changed if not n.startswith("prompt_encoder.")}


@pytest.mark.parametrize(("backbone", "prompt", "lr", "ratio"), [("full", False, 1e-2, 0.5), ("lora", True, 3e-2, 0.97)])
def test_loss_falls_when_overfitting(student_cfg, backbone, prompt, lr, ratio):
    # A rank-4 LoRA on a 32-wide random model moves slowly (it cannot touch the random LM head):
    # it only has to fall steadily; full fine-tuning must halve the loss.
    student = make_student(student_cfg, backbone, prompt=prompt)
    losses = optimise(student, train_batch(student, student_cfg), steps=30, lr=lr)
    assert losses[-1] < ratio * losses[0], losses
    assert losses[-1] < min(losses[:5])


@pytest.mark.parametrize("prompt", [False, True])
def test_generate_left_padded_batch_matches_single_prompts(student_cfg, prompt):
    student = make_student(student_cfg, "full", prompt=prompt)
    tok = student.tokenizer
    enc = encode_questions(ITEMS, tok, student_cfg)
    batch = collate_prompts(enc, tok.pad_token_id)
    assert batch["attention_mask"][:, 0].min() == 0  # really left-padded
    out = student.generate(batch["input_ids"], batch["attention_mask"], max_new_tokens=6)
    assert out.shape == (len(ITEMS), 6)
    for row in range(len(ITEMS)):
        single = collate_prompts([enc[row]], tok.pad_token_id)
        alone = student.generate(single["input_ids"], single["attention_mask"], max_new_tokens=6)
        assert torch.equal(alone[0], out[row])

    # stopping on EOS: declare the token generated at step 2 of row 0 the EOS
    eos = int(out[0, 2])
    first = int((out[0] == eos).nonzero()[0, 0])
    stopped = student.generate(batch["input_ids"], batch["attention_mask"], max_new_tokens=6, eos_token_id=eos)
    assert torch.equal(stopped[0, : first + 1], out[0, : first + 1])
    assert (stopped[0, first + 1 :] == tok.pad_token_id).all()


def test_overfit_student_generates_its_target_and_stops(student_cfg):
    student = make_student(student_cfg, "full", prompt=True)
    tok = student.tokenizer
    items = ITEMS[1:2]
    optimise(student, train_batch(student, student_cfg, items), steps=40, lr=1e-2)
    prompts = collate_prompts(encode_questions(items, tok, student_cfg), tok.pad_token_id)
    out = student.generate(prompts["input_ids"], prompts["attention_mask"], max_new_tokens=30)
    text = tok.decode(out[0], skip_special_tokens=False)
    assert text.startswith(" 5 + 3 = 8. --> 8 END</s>")
    assert out.shape[1] < 30  # stopped on EOS
