"""``sdpa_row_chunks``: decoding steps skip each chunk of rows' left padding, with SDPA's result."""

from __future__ import annotations

import pytest
import torch
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from prada.evaluation import generate as generate_module
from prada.evaluation.generate import greedy_generate
from prada.evaluation.row_attention import IMPLEMENTATION, row_chunks, sdpa_row_chunks_forward, use_row_chunks

from .test_generate import _prompts


def _left_padded(lengths: list[int], width: int) -> torch.Tensor:
    return torch.stack([torch.arange(width) >= width - n for n in lengths]).long()  # (B, S)


def test_the_plan_starts_each_chunk_at_its_first_used_column() -> None:
    mask = _left_padded([9, 9, 8, 5, 4, 4, 2, 1], 10)  # rows by age: the newest last
    assert row_chunks(mask, chunks=4) == ((0, 2, 1), (2, 4, 2), (4, 6, 6), (6, 8, 8))
    assert row_chunks(mask, chunks=1) == ((0, 8, 1),)
    assert row_chunks(_left_padded([10, 3], 10), chunks=2) == ((0, 1, 0), (1, 2, 7))
    assert row_chunks(_left_padded([10, 3, 9, 10], 10), chunks=2) is None  # every chunk uses column 0
    assert row_chunks(_left_padded([3], 10), chunks=4) == ((0, 1, 7),)  # fewer rows than chunks


class _Attention(torch.nn.Module):
    num_key_value_groups = 2
    is_causal = True


@pytest.mark.parametrize("chunks", [1, 2, 3])
def test_chunked_attention_is_sdpas(chunks) -> None:
    g = torch.Generator().manual_seed(0)
    b, h, hk, s, d = 6, 4, 2, 13, 8
    q, k, v = torch.randn(b, h, 1, d, generator=g), torch.randn(b, hk, s, d, generator=g), torch.randn(b, hk, s, d, generator=g)
    mask2d = _left_padded([12, 12, 9, 7, 3, 2], s)
    mask4d = mask2d.bool()[:, None, None, :]  # (B, 1, 1, S), what transformers passes to sdpa
    plan = row_chunks(mask2d, chunks)
    assert plan is not None
    with torch.no_grad():
        want, _ = sdpa_attention_forward(_Attention(), q, k, v, mask4d)
        got, _ = sdpa_row_chunks_forward(_Attention(), q, k, v, mask4d, row_chunks=plan)
        plain, _ = sdpa_row_chunks_forward(_Attention(), q, k, v, mask4d)  # no plan: sdpa itself
    assert got.shape == want.shape == (b, 1, h, d)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
    assert torch.equal(plain, want)
    # A plan that cut a column some row of the chunk uses would change that row: the check bites.
    wrong = tuple((lo, hi, col + 1) for lo, hi, col in plan)
    with torch.no_grad():
        bad, _ = sdpa_row_chunks_forward(_Attention(), q, k, v, mask4d, row_chunks=wrong)
    assert not torch.allclose(bad, want, atol=1e-4)


def test_the_decoder_skips_padding_and_gives_the_same_generations(tiny_student, monkeypatch) -> None:
    """Prompts of different lengths through continuous batching: the steps pass chunk plans that
    skip columns, and every generation is the one the prompt gets alone."""
    plans = []

    def spy(mask, chunks=4):
        plan = row_chunks(mask, chunks)
        plans.append(plan)
        return plan

    monkeypatch.setattr(generate_module, "row_chunks", spy)
    prompts = _prompts(tiny_student.tokenizer) * 2
    out, _ = greedy_generate(tiny_student, prompts, max_new_tokens=10, batch_size=4)
    assert tiny_student.causal_lm.config._attn_implementation == IMPLEMENTATION
    assert any(p is not None and any(col > 0 for _, _, col in p) for p in plans)
    for p, g in zip(prompts, out):
        [alone], _ = greedy_generate(tiny_student, [p], max_new_tokens=10, batch_size=1)
        assert g == alone


def test_other_attention_implementations_are_left_alone(tiny_student) -> None:
    class _NotSdpa:
        class config:  # noqa: N801 - mimics a model's config attribute
            _attn_implementation = "eager"

    assert use_row_chunks(_NotSdpa()) is False
    assert use_row_chunks(object()) is False
    assert use_row_chunks(tiny_student.causal_lm) is True  # sdpa (or already switched)
