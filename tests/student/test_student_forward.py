"""Student forward pass: loss against the plain HF loss, prompt-encoder prepending, feature pooling."""

from __future__ import annotations

import pytest
import torch
from student_helpers import ITEMS, make_student, train_batch
from transformers import AutoModelForCausalLM

from prada.student.format import IGNORE_INDEX, collate_prompts, collate_questions, encode_questions
from prada.student.student import pool_features


def _per_example_reference(model, batch, prefix_embeds=None) -> torch.Tensor:
    """Mean over examples of HF's own labels loss, computed one unpadded example at a time."""
    losses = []
    for row in range(batch["input_ids"].shape[0]):
        keep = batch["attention_mask"][row].bool()
        ids, labels = batch["input_ids"][row][keep][None], batch["labels"][row][keep][None]
        if prefix_embeds is None:
            out = model(input_ids=ids, labels=labels)
        else:
            embeds = torch.cat([prefix_embeds, model.get_input_embeddings()(ids)], dim=1)
            pad = torch.full((1, prefix_embeds.shape[1]), IGNORE_INDEX)
            out = model(inputs_embeds=embeds, labels=torch.cat([pad, labels], dim=1))
        losses.append(out.loss)
    return torch.stack(losses).mean()


def test_lm_loss_equals_hf_loss_averaged_per_example(student_cfg, tiny_model_dir):
    student = make_student(student_cfg, "frozen")
    batch = train_batch(student, student_cfg)
    out = student(**batch)
    reference = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    with torch.no_grad():
        expected = _per_example_reference(reference, batch)
    torch.testing.assert_close(out.lm_loss, expected, rtol=1e-5, atol=1e-5)
    assert out.lm_loss.dtype == torch.float32
    assert out.num_target_tokens == int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
    # a question-only batch has no target: zero loss, features still there
    q = collate_questions(encode_questions(ITEMS, student.tokenizer, student_cfg), student.tokenizer.pad_token_id)
    out_q = student(**q)
    assert float(out_q.lm_loss) == 0.0 and out_q.features.shape == (len(ITEMS), student.hidden_size)
    assert student(batch["input_ids"], batch["attention_mask"]).lm_loss is None


def test_prompt_encoder_prepends_virtual_tokens(student_cfg):
    student = make_student(student_cfg, "frozen", prompt=True, virtual=5)
    batch = train_batch(student, student_cfg)
    seen = {}

    def hook(module, args, kwargs):
        seen["embeds"], seen["mask"] = kwargs["inputs_embeds"].shape, kwargs["attention_mask"]

    handle = student.causal_lm.get_decoder().register_forward_pre_hook(hook, with_kwargs=True)
    with torch.no_grad():
        out = student(**batch, return_logits=True, return_hidden=True)
    handle.remove()
    b, t = batch["input_ids"].shape
    assert seen["embeds"] == (b, t + 5, student.hidden_size)  # sequence grows by num_virtual_tokens
    assert torch.equal(seen["mask"][:, :5], torch.ones(b, 5, dtype=torch.long))
    assert out.logits.shape[:2] == (b, t) and out.hidden_states.shape == (b, t, student.hidden_size)
    # the loss equals HF's own loss on [virtual; tokens] with labels padded by V on the left
    with torch.no_grad():
        expected = _per_example_reference(student.causal_lm, batch, student.virtual_token_embeddings(1))
    torch.testing.assert_close(out.lm_loss, expected, rtol=1e-5, atol=1e-5)
    # features = mean of the last hidden state over the question positions, shifted by V
    with torch.no_grad():
        embeds = torch.cat([student.virtual_token_embeddings(b), student.causal_lm.get_input_embeddings()(batch["input_ids"])], 1)
        mask = torch.cat([torch.ones(b, 5, dtype=torch.long), batch["attention_mask"]], 1)
        hf = student.causal_lm(inputs_embeds=embeds, attention_mask=mask, output_hidden_states=True)
    last = hf.hidden_states[-1]  # (B, V+T, D)
    for row in range(b):
        q_pos = batch["question_mask"][row].nonzero()[:, 0] + 5
        torch.testing.assert_close(out.features[row], last[row, q_pos].mean(0), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("prompt", [False, True])
@pytest.mark.parametrize("pooling", ["question_mean", "question_last"])
def test_features_ignore_target_padding_and_batch_layout(student_cfg, prompt, pooling):
    student = make_student(student_cfg, "full", prompt=prompt)
    tok = student.tokenizer
    batch = train_batch(student, student_cfg)
    with torch.no_grad():
        base = student(**batch, pooling=pooling).features
        # perturb every target and padding token: question features must not move (causal + masked)
        perturbed = dict(batch)
        outside = batch["question_mask"].eq(0) & (batch["labels"].ne(IGNORE_INDEX) | batch["attention_mask"].eq(0))
        perturbed["input_ids"] = torch.where(outside, (batch["input_ids"] + 7) % len(tok), batch["input_ids"])
        assert not torch.equal(perturbed["input_ids"], batch["input_ids"])
        torch.testing.assert_close(student(**perturbed, pooling=pooling).features, base, rtol=1e-5, atol=1e-5)
        # question-only batches (right and left padded) give the same features as the labeled pass
        enc = encode_questions(ITEMS, tok, student_cfg)
        right = student(**collate_questions(enc, tok.pad_token_id), pooling=pooling).features
        left = student(**collate_prompts(enc, tok.pad_token_id), pooling=pooling).features
    torch.testing.assert_close(right, base, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(left, base, rtol=1e-4, atol=1e-5)


def test_pool_features_shapes():
    hidden = torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(2, 4, 3)  # (B, T, D)
    mask = torch.tensor([[0, 1, 1, 0], [0, 0, 0, 0]])
    torch.testing.assert_close(pool_features(hidden, mask)[0], hidden[0, 1:3].mean(0))
    torch.testing.assert_close(pool_features(hidden, mask, "question_last")[0], hidden[0, 2])
    assert pool_features(hidden, mask).abs()[1].sum() == 0  # no question tokens -> zeros
