"""The compiler back end of ``train.activation_memory_budget``."""

from __future__ import annotations

import pytest
import torch
import torch._functorch.config as functorch_config

from prada import hardware
from prada.student.compile import inductor_with_memory_budget


def test_the_budget_holds_while_inductor_compiles_and_only_then(monkeypatch) -> None:
    import torch._inductor.compile_fx as compile_fx_module

    seen = []

    def fake_compile_fx(graph, example_inputs):
        seen.append(functorch_config.activation_memory_budget)
        return graph

    monkeypatch.setattr(compile_fx_module, "compile_fx", fake_compile_fx)
    before = functorch_config.activation_memory_budget
    backend = inductor_with_memory_budget(0.6)
    graph = torch.fx.symbolic_trace(torch.nn.Linear(2, 2))
    assert backend(graph, [torch.zeros(1, 2)]) is graph
    assert seen == [0.6]
    assert functorch_config.activation_memory_budget == before


@pytest.mark.parametrize("budget", [0.0, -0.1, 1.01])
def test_a_budget_outside_0_1_is_refused(budget: float) -> None:
    with pytest.raises(ValueError, match="must be in"):
        inductor_with_memory_budget(budget)


class _Block(torch.nn.Module):
    """Norm → up-projection → gated activation → down-projection, with a residual."""

    def __init__(self) -> None:
        super().__init__()
        self.norm, self.up, self.down = torch.nn.LayerNorm(16), torch.nn.Linear(16, 64), torch.nn.Linear(64, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.up(self.norm(x))
        return x + self.down(torch.nn.functional.silu(h) * torch.sigmoid(h))


def _saved_bytes_and_grads(backend) -> tuple[int, list[torch.Tensor]]:
    torch.manual_seed(0)
    block = _Block()
    block.compile(dynamic=True, backend=backend)
    x = torch.randn(4, 8, 16)
    saved: list[int] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved.append(t.numel() * t.element_size())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = block(x)
    y.square().sum().backward()
    return sum(saved), [p.grad for p in block.parameters()]


@pytest.mark.skipif(not hardware.has_cxx_compiler(), reason="inductor needs a C++ compiler")
def test_a_lower_budget_saves_fewer_activations_for_the_same_gradients() -> None:
    full, grads_full = _saved_bytes_and_grads("inductor")
    budgeted, grads_budgeted = _saved_bytes_and_grads(inductor_with_memory_budget(0.5))
    assert budgeted < full
    for a, b in zip(grads_full, grads_budgeted, strict=True):
        torch.testing.assert_close(a, b)
