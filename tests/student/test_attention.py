"""``sdpa_recompute``: SDPA's forward with a batched-matmul backward (``train.attention``).

Its gradients must be SDPA's (checked against a float64 reference, causal and padded, with
grouped-query heads), inside a real model through transformers' attention interface, and the
switch must not leak into what a checkpoint records."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from student_helpers import make_student, train_batch

from prada import hardware
from prada.errors import ConfigError
from prada.student.attention import IMPLEMENTATION, recompute_attention
from prada.student.student import Student


def _inputs(b: int, h: int, hk: int, t: int, d: int = 8, dtype=torch.float32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(b, n, t, d, generator=g).to(dtype).requires_grad_() for n in (h, hk, hk))
    grad_out = torch.randn(b, h, t, d, generator=g).to(dtype)
    return q, k, v, grad_out


def _reference(q, k, v, grad_out, mask):
    """Float64 SDPA (its math kernel) and its gradients."""
    q64, k64, v64 = (x.detach().double().requires_grad_() for x in (q, k, v))
    out = F.scaled_dot_product_attention(q64, k64, v64, attn_mask=mask, is_causal=mask is None, enable_gqa=True)
    return out, torch.autograd.grad(out, (q64, k64, v64), grad_out.double())


def _padding_mask(b: int, t: int, pad: dict[int, int], left: bool = False) -> torch.Tensor:
    """(B, 1, T, T) causal ∧ key-padding mask, True = attend; ``pad`` = {row: padded positions}."""
    keys = torch.ones(b, t, dtype=torch.bool)
    for row, n in pad.items():
        if left:
            keys[row, :n] = False
        else:
            keys[row, t - n:] = False
    return torch.ones(t, t, dtype=torch.bool).tril()[None, None] & keys[:, None, None, :]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b).norm() / b.norm()).item()


@pytest.mark.parametrize("h, hk", [(4, 4), (4, 2), (6, 1)])
@pytest.mark.parametrize("padded", [False, True])
def test_gradients_are_sdpas(h, hk, padded) -> None:
    q, k, v, grad_out = _inputs(3, h, hk, 11)
    mask = _padding_mask(3, 11, {0: 4, 2: 1}) if padded else None
    out = recompute_attention(q, k, v, mask)
    grads = torch.autograd.grad(out, (q, k, v), grad_out)
    ref_out, ref_grads = _reference(q, k, v, grad_out, mask)
    assert _rel(out, ref_out) < 1e-6
    for got, want in zip(grads, ref_grads):
        assert got.shape == want.shape
        assert _rel(got, want) < 1e-5


def test_a_fully_masked_row_gets_finite_gradients() -> None:
    """Left padding leaves the first query rows nothing to attend to: their outputs are not used
    (zero output gradient), and the other rows' gradients are SDPA's."""
    q, k, v, grad_out = _inputs(2, 4, 2, 9)
    mask = _padding_mask(2, 9, {1: 3}, left=True)
    grad_out[1, :, :3] = 0.0
    out = recompute_attention(q, k, v, mask)
    grads = torch.autograd.grad(out, (q, k, v), grad_out)
    assert all(torch.isfinite(g).all() for g in grads)
    _, ref_grads = _reference(q, k, v, grad_out, mask)
    assert _rel(grads[0][0], ref_grads[0][0]) < 1e-5 and _rel(grads[1], ref_grads[1]) < 1e-5


def test_bf16_gradients_are_as_close_to_float64_as_sdpas() -> None:
    """In bf16 the scores are bf16 matmul outputs (as in transformers' eager attention under
    autocast): the error stays within 2× SDPA's own bf16 error."""
    q, k, v, grad_out = _inputs(4, 6, 2, 40, d=16, dtype=torch.bfloat16)
    grads = torch.autograd.grad(recompute_attention(q, k, v), (q, k, v), grad_out)
    sdpa = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    sdpa_grads = torch.autograd.grad(sdpa, (q, k, v), grad_out)
    _, ref_grads = _reference(q, k, v, grad_out, None)
    for got, theirs, want in zip(grads, sdpa_grads, ref_grads):
        assert _rel(got, want) < max(2 * _rel(theirs, want), 1e-2)


def test_bad_inputs_are_named() -> None:
    q, k, v, _ = _inputs(1, 3, 2, 4)
    with pytest.raises(ValueError, match="multiple"):
        recompute_attention(q, k, v)
    q, k, v, _ = _inputs(1, 4, 2, 4)
    with pytest.raises(ValueError, match="boolean mask"):
        recompute_attention(q, k, v, torch.zeros(1, 1, 4, 4))


def _loss_and_grads(student: Student, batch) -> tuple[float, dict[str, torch.Tensor]]:
    student.train()
    student.zero_grad(set_to_none=True)
    loss = student(**batch).lm_loss
    loss.backward()
    return loss.item(), {n: p.grad.clone() for n, p in student.named_parameters() if p.grad is not None}


def test_the_student_trains_through_it_as_through_sdpa(student_cfg) -> None:
    """A padded batch through the tiny model (grouped-query heads, virtual tokens): the same loss
    and the same gradient of every parameter."""
    student = make_student(student_cfg, prompt=True)
    batch = train_batch(student, student_cfg)
    assert bool((batch["attention_mask"] == 0).any())  # the batch is padded
    loss, grads = _loss_and_grads(student, batch)
    student.set_training_attention(IMPLEMENTATION)
    assert student.causal_lm.config._attn_implementation == IMPLEMENTATION
    loss2, grads2 = _loss_and_grads(student, batch)
    assert loss2 == pytest.approx(loss, rel=1e-6)
    assert grads2.keys() == grads.keys()
    for name, g in grads.items():
        assert torch.allclose(grads2[name], g, rtol=1e-4, atol=1e-7), name


def test_checkpoints_do_not_record_it(student_cfg, tmp_path) -> None:
    student = make_student(student_cfg)
    student.set_training_attention(IMPLEMENTATION)
    with torch.no_grad():  # no gradient: plain SDPA, same outputs
        batch = train_batch(student, student_cfg)
        before = student(**batch).lm_loss
    student.save_checkpoint(tmp_path / "ckpt", method="ft_cot", step=1)
    loaded = Student.from_checkpoint(tmp_path / "ckpt")
    assert loaded.causal_lm.config._attn_implementation != IMPLEMENTATION
    with torch.no_grad():
        assert loaded(**batch).lm_loss.item() == pytest.approx(before.item(), rel=1e-6)


def test_an_unknown_implementation_is_a_config_error(student_cfg) -> None:
    with pytest.raises(ConfigError, match="train.attention"):
        make_student(student_cfg).set_training_attention("no_such_attention")


def test_auto_is_the_compiled_bf16_cpu_path() -> None:
    assert hardware.resolve_attention("auto", True, "bf16", "cpu") == IMPLEMENTATION
    assert hardware.resolve_attention("auto", False, "bf16", "cpu") == "model"  # eager: flash backward
    assert hardware.resolve_attention("auto", True, "no", "cpu") == "model"  # the fp32 reference path
    assert hardware.resolve_attention("model", True, "bf16", "cpu") == "model"
    assert hardware.resolve_attention(IMPLEMENTATION, False, "no", "cpu") == IMPLEMENTATION
    with pytest.raises(ConfigError, match="train.attention"):
        hardware.resolve_attention("flash", True, "bf16", "cpu")
