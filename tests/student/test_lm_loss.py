"""The chunked, recomputed LM loss equals the one-shot computation, values and gradients."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from prada.student.loss import token_cross_entropy


def _head_and_inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    head = torch.nn.Linear(16, 50, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.randn(50, 16, generator=g))
    hidden = torch.randn(37, 16, generator=g, requires_grad=True)  # 37: chunks of 8 leave a ragged tail
    targets = torch.randint(0, 50, (37,), generator=g)
    return head, hidden, targets


def test_chunked_loss_and_gradients_match_one_shot():
    head, hidden, targets = _head_and_inputs()
    reference = F.cross_entropy(head(hidden).float(), targets, reduction="none")
    (ref_h, ref_w) = torch.autograd.grad(reference.mean(), [hidden, head.weight])

    chunked = token_cross_entropy(lambda h: head(h).float(), hidden, targets, chunk_rows=8)
    (got_h, got_w) = torch.autograd.grad(chunked.mean(), [hidden, head.weight])

    assert chunked.shape == (37,)
    torch.testing.assert_close(chunked, reference)
    torch.testing.assert_close(got_h, ref_h)
    torch.testing.assert_close(got_w, ref_w)


def test_chunked_path_keeps_only_the_hidden_states_for_backward():
    """Checkpointed chunks save their (n, D) inputs, not (n, V) logits: nothing vocab-sized is kept."""
    head, hidden, targets = _head_and_inputs()
    saved: list[torch.Size] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved.append(t.shape)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        token_cross_entropy(lambda h: head(h).float(), hidden, targets, chunk_rows=8)
    assert saved, "the loss must keep something for backward"
    assert all(50 not in shape for shape in saved), saved

    saved.clear()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        F.cross_entropy(head(hidden).float(), targets, reduction="none")
    assert any(50 in shape for shape in saved)  # the one-shot path does keep the logits


def test_weighted_linear_cross_entropy_matches_autograd_values_and_gradients():
    from prada.student.loss import weighted_linear_cross_entropy

    head, hidden, targets = _head_and_inputs(seed=1)
    weights = torch.rand(37, generator=torch.Generator().manual_seed(2))
    reference = (weights * F.cross_entropy(hidden @ head.weight.T, targets, reduction="none")).sum()
    ref_h, ref_w = torch.autograd.grad(3.0 * reference, [hidden, head.weight])

    total, per_token = weighted_linear_cross_entropy(hidden, head.weight, targets, weights, chunk_rows=8)
    got_h, got_w = torch.autograd.grad(3.0 * total, [hidden, head.weight])  # the upstream scale is applied

    torch.testing.assert_close(total, reference)
    torch.testing.assert_close(per_token, F.cross_entropy(hidden @ head.weight.T, targets, reduction="none"))
    assert not per_token.requires_grad
    torch.testing.assert_close(got_h, ref_h)
    torch.testing.assert_close(got_w, ref_w)


def test_weighted_linear_cross_entropy_under_bf16_autocast_stays_close_to_fp32():
    from prada.student.loss import weighted_linear_cross_entropy

    head, hidden, targets = _head_and_inputs(seed=3)
    weights = torch.full((37,), 1 / 37)
    fp32, _ = weighted_linear_cross_entropy(hidden, head.weight, targets, weights, chunk_rows=8)
    ref_h, = torch.autograd.grad(fp32, [hidden])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf16, _ = weighted_linear_cross_entropy(hidden, head.weight, targets, weights, chunk_rows=8)
    got_h, = torch.autograd.grad(bf16, [hidden])
    assert bf16.dtype == torch.float32 and got_h.dtype == hidden.dtype
    torch.testing.assert_close(bf16, fp32, rtol=2e-2, atol=2e-2)
    torch.testing.assert_close(got_h, ref_h, rtol=5e-2, atol=5e-3)


def test_student_loss_is_the_same_through_the_fused_head_and_the_chunked_one(tiny_model_dir):
    """Student.forward takes the fused head when it can: same loss and gradients as the generic path."""
    from prada.config import StudentConfig
    from prada.student.student import Student

    torch.manual_seed(0)
    student = Student.build(StudentConfig(model=str(tiny_model_dir)), "full").train()
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 300, (3, 12), generator=g)
    labels = ids.clone()
    labels[:, :5] = -100
    labels[2, :] = -100  # an example without labels is left out of the mean
    mask = torch.ones_like(ids)
    assert student._plain_head_weight() is not None

    fused = student(ids, mask, labels)
    fused_grads = torch.autograd.grad(fused.lm_loss, list(student.backbone.parameters()))
    student._plain_head_weight = lambda: None  # force the generic chunked path
    generic = student(ids, mask, labels)
    generic_grads = torch.autograd.grad(generic.lm_loss, list(student.backbone.parameters()))

    torch.testing.assert_close(fused.lm_loss, generic.lm_loss)
    torch.testing.assert_close(fused.per_example_loss, generic.per_example_loss.detach())
    for a, b in zip(fused_grads, generic_grads):
        torch.testing.assert_close(a, b)
