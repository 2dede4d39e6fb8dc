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
