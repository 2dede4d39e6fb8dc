from __future__ import annotations

import torch
from torch import nn

from prada.evaluation.exact_logits import exact_top_logits


class _Head(nn.Module):
    """A model that is only an LM head over a given hidden state."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.lm_head = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
        self.lm_head.weight.data = weight.clone()

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.lm_head(hidden)


def test_a_bf16_tie_is_decided_as_in_fp32() -> None:
    # Logits 16.0 and 16.015625 in fp32; bf16 (8 significant bits) rounds both to 16.
    weight = torch.tensor([[1.0], [1.0 + 2**-10], [0.5]])
    hidden = torch.tensor([[16.0]])
    model = _Head(weight)
    assert int(model(hidden).argmax()) == 1
    model.to(torch.bfloat16)
    plain = model(hidden.bfloat16())
    assert plain[0, 0] == plain[0, 1] and int(plain.float().argmax()) == 0  # the tie goes to the first
    handle = exact_top_logits(model, weight, k=2)
    exact = model(hidden.bfloat16())
    assert exact.dtype == torch.float32 and int(exact.argmax()) == 1
    assert exact[0, 1] == 16.0 + 2**-6 and exact[0, 2] == 8.0  # outside the top 2: the bf16 value
    handle.remove()
    assert model(hidden.bfloat16()).dtype == torch.bfloat16


def test_top_k_logits_equal_the_fp32_head_on_the_same_hidden_states(tiny_student) -> None:
    torch.manual_seed(0)
    lm = tiny_student.causal_lm
    head = lm.get_output_embeddings()
    weight = head.weight.detach().float().clone()
    hidden = torch.randn(3, 5, weight.shape[1])  # (B, T, D)
    reference = hidden @ weight.T  # (B, T, V) in fp32
    handle = exact_top_logits(lm, weight, k=4)
    try:
        out = head(hidden)  # an fp32 head: the top 4 are recomputed, the rest pass through
        top = out.topk(4, dim=-1).indices
        assert torch.allclose(out.gather(-1, top), reference.gather(-1, top), atol=1e-5)
        assert torch.equal(out.argmax(-1), reference.argmax(-1))
    finally:
        handle.remove()


def test_evaluation_loads_bf16_students_with_exact_top_logits(tiny_model_dir) -> None:
    from prada.config import StudentConfig
    from prada.evaluation.evaluate import load_model_for_eval

    cfg = StudentConfig(model=str(tiny_model_dir))
    ids = torch.tensor([[1, 2, 3]])
    for dtype, k, logits_dtype in (("bfloat16", 8, torch.float32), ("bfloat16", 0, torch.bfloat16),
                                   ("float32", 8, torch.float32)):
        student, info = load_model_for_eval(tiny_model_dir, cfg, "cpu", dtype, exact_top_logits=k)
        assert info["dtype"] == dtype
        with torch.no_grad():
            assert student.causal_lm(input_ids=ids).logits.dtype == logits_dtype
