"""The fused decoding-attention kernel: SDPA's result (to bf16 rounding) on the shapes decoding
passes it, the left padding it skips, the fallback where it does not apply or cannot be built."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from prada.evaluation import decode_kernel
from prada.evaluation.decode_kernel import SOURCE, decode_attention, load_kernel
from prada.evaluation.row_attention import KERNEL_IMPLEMENTATION, decode_kernel_forward, use_decode_kernel

pytestmark = pytest.mark.skipif(load_kernel() is None, reason="the kernel cannot be built here (no C++ compiler)")


def _reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """fp32 attention of (B, Hk, G, D) queries over (B, Hk, S, D) keys/values, mask (B, S)."""
    q, k, v = q.float(), k.float(), v.float()
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :])


def _inputs(b: int, hk: int, g: int, s: int, d: int, capacity: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(b, hk, g, d, generator=gen).bfloat16()
    # views of a larger cache, as the decoder's AppendOnlyCache hands them out
    k = (torch.randn(b, hk, capacity, d, generator=gen) * 2).bfloat16()[:, :, :s]
    v = torch.randn(b, hk, capacity, d, generator=gen).bfloat16()[:, :, :s]
    return q, k, v


def _left_padded(lengths: list[int], s: int) -> torch.Tensor:
    return torch.stack([torch.arange(s) >= s - n for n in lengths])  # (B, S) bool


# (G, D): SmolLM2 (3, 64), Qwen2.5-0.5B (7, 64), Qwen2.5-1.5B (6, 128), a dimension the vector
# path does not take (48: plain loops); S below, at and past the 16-key blocks.
@pytest.mark.parametrize("g,d", [(3, 64), (7, 64), (6, 128), (2, 48)])
@pytest.mark.parametrize("s", [5, 16, 37, 70])
def test_the_kernel_is_attention_to_bf16_rounding(g, d, s) -> None:
    b, hk = 5, 2
    q, k, v = _inputs(b, hk, g, s, d, capacity=s + 9)
    lengths = [s, s - 1, max(1, s // 2), 1, max(1, s - 17)]
    mask = _left_padded(lengths, s)
    mask[0, s // 3] = False  # a hole inside a row's columns is masked too, not only leading padding
    got = decode_attention(q, k, v, mask, d ** -0.5)
    assert got.shape == q.shape and got.dtype == torch.bfloat16
    want = _reference(q, k, v, mask)
    # one bf16 rounding of outputs of magnitude <= ~3
    torch.testing.assert_close(got.float(), want, rtol=8e-3, atol=8e-3)
    # the check bites: attending to one more padded column moves the result
    wider = mask.clone()
    wider[3, -2] = True
    assert not torch.allclose(_reference(q, k, v, wider)[3].float(), got[3].float(), rtol=8e-3, atol=8e-3)


def test_left_padding_is_never_read() -> None:
    """NaN in the padded columns of the cache (as uninitialised memory could hold) changes nothing."""
    q, k, v = _inputs(3, 1, 3, 40, 64, capacity=40)
    mask = _left_padded([40, 23, 7], 40)
    clean = decode_attention(q, k, v, mask, 0.125)
    k, v = k.clone(), v.clone()
    k[1, :, :17] = float("nan")
    v[2, :, :33] = float("nan")
    assert torch.equal(decode_attention(q, k, v, mask, 0.125), clean)


def test_a_row_that_attends_to_nothing_gets_zeros() -> None:
    q, k, v = _inputs(2, 1, 3, 20, 64, capacity=20)
    mask = _left_padded([20, 0], 20)
    out = decode_attention(q, k, v, mask, 0.125)
    assert torch.count_nonzero(out[1]) == 0 and torch.count_nonzero(out[0]) > 0


def test_bad_inputs_are_refused_with_a_message() -> None:
    q, k, v = _inputs(2, 1, 3, 20, 64, capacity=20)
    mask = torch.ones(2, 20, dtype=torch.bool)
    with pytest.raises(RuntimeError, match="bfloat16"):
        decode_attention(q.float(), k, v, mask, 0.125)
    with pytest.raises(RuntimeError, match="mask must be"):
        decode_attention(q, k, v, mask[:, :10], 0.125)
    with pytest.raises(RuntimeError, match="rows must be contiguous"):
        decode_attention(q, k.transpose(2, 3).contiguous().transpose(2, 3), v, mask, 0.125)


class _Attention(torch.nn.Module):
    num_key_value_groups = 3
    is_causal = True


def test_the_attention_function_matches_sdpa_and_falls_back_where_the_kernel_does_not_apply() -> None:
    gen = torch.Generator().manual_seed(1)
    b, h, hk, s, d = 4, 9, 3, 29, 64
    q = torch.randn(b, h, 1, d, generator=gen).bfloat16()
    k, v = (torch.randn(b, hk, s, d, generator=gen).bfloat16() for _ in range(2))
    mask = _left_padded([29, 20, 11, 3], s)[:, None, None, :]  # (B, 1, 1, S), what transformers passes
    with torch.no_grad():
        want, _ = sdpa_attention_forward(_Attention(), q, k, v, mask)
        got, _ = decode_kernel_forward(_Attention(), q, k, v, mask)
        unmasked, _ = decode_kernel_forward(_Attention(), q, k, v, None)
        no_mask, _ = sdpa_attention_forward(_Attention(), q, k, v, None)
    assert got.shape == want.shape == (b, 1, h, d)
    torch.testing.assert_close(got.float(), want.float(), rtol=1e-2, atol=1e-2)
    torch.testing.assert_close(unmasked.float(), no_mask.float(), rtol=1e-2, atol=1e-2)
    # fp32, a prefill (several queries) or a pass under autograd: SDPA's own result, bit for bit
    with torch.no_grad():
        for args in ((q.float(), k.float(), v.float(), mask),
                     (q.expand(b, h, 2, d), k, v, mask.expand(b, 1, 2, s))):
            assert torch.equal(decode_kernel_forward(_Attention(), *args)[0], sdpa_attention_forward(_Attention(), *args)[0])
    assert torch.equal(decode_kernel_forward(_Attention(), q, k, v, mask)[0], want)  # grad enabled here
    # heads the vector path is not built for: 48 dims, 18 grouped queries per key/value head
    with torch.no_grad():
        for qq, kk, vv in ((q[..., :48], k[..., :48], v[..., :48]), (q.repeat(1, 6, 1, 1)[:, :18], k[:, :1], v[:, :1])):
            assert torch.equal(decode_kernel_forward(_Attention(), qq, kk, vv, mask)[0],
                               sdpa_attention_forward(_Attention(), qq, kk, vv, mask)[0])


def test_the_decoder_runs_the_kernel_on_a_bf16_student(tiny_student, monkeypatch) -> None:
    """Greedy decoding of a bf16 copy of the tiny student calls the kernel at every step, and
    plans no row chunks for it (the kernel skips each row's padding itself); its next-token
    logits match SDPA's to bf16 rounding."""
    import copy

    from prada.evaluation import generate as generate_module
    from prada.evaluation.generate import _forward_accepts, _returned_cache, greedy_generate
    from prada.student.tiny import build_tiny_model

    from .test_generate import _prompts

    student = copy.deepcopy(tiny_student)
    # head dimension 32 (hidden 128, 4 heads), one the kernel's vector path takes
    student.backbone = build_tiny_model(len(student.tokenizer), hidden_size=128).to(torch.bfloat16)
    lm = student.causal_lm
    assert use_decode_kernel(lm) and lm.config._attn_implementation == KERNEL_IMPLEMENTATION
    calls = []
    real = decode_kernel.decode_attention

    def spy(*args, **kwargs):
        calls.append(args[0].shape)
        return real(*args, **kwargs)

    monkeypatch.setattr(decode_kernel, "decode_attention", spy)
    plans = []
    monkeypatch.setattr(generate_module, "row_chunks", lambda *args, **kwargs: plans.append(args))
    prompts = _prompts(student.tokenizer)
    out, stats = greedy_generate(student, prompts, max_new_tokens=6, batch_size=4)
    groups = lm.config.num_attention_heads // lm.config.num_key_value_heads
    assert len(out) == len(prompts) and len(calls) >= lm.config.num_hidden_layers and not plans
    assert all(len(shape) == 4 and shape[2] == groups for shape in calls)
    # one decoding step, kernel against SDPA, on left-padded rows
    ids = torch.tensor([[0, 0, 5, 6, 7], [1, 2, 3, 4, 5]])
    attn = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    logits = {}
    cache_kw = "cache" if _forward_accepts(lm, "cache") else "past_key_values"
    with torch.no_grad():
        for impl in (KERNEL_IMPLEMENTATION, "sdpa"):
            lm.set_attn_implementation(impl)
            first = lm(input_ids=ids, attention_mask=attn, use_cache=True)
            step = lm(input_ids=torch.tensor([[8], [9]]), attention_mask=torch.cat([attn, torch.ones(2, 1, dtype=torch.long)], 1),
                      use_cache=True, **{cache_kw: _returned_cache(first)})
            logits[impl] = step.logits[:, -1].float()
    torch.testing.assert_close(logits[KERNEL_IMPLEMENTATION], logits["sdpa"], rtol=0.05, atol=0.05)


def test_heads_the_kernel_does_not_take_keep_their_attention_without_a_build(tiny_student, monkeypatch) -> None:
    """The tiny student's heads have 8 dimensions: the model stays on its attention (and takes
    row-chunk plans), and no kernel is even loaded for it."""
    import copy

    lm = copy.deepcopy(tiny_student.causal_lm).to(torch.bfloat16)
    before = lm.config._attn_implementation
    monkeypatch.setattr(decode_kernel, "load_kernel", lambda: pytest.fail("loaded for heads it cannot take"))
    assert not use_decode_kernel(lm) and lm.config._attn_implementation == before != KERNEL_IMPLEMENTATION


def test_no_compiler_means_sdpa_with_a_warning(monkeypatch, caplog, tiny_student) -> None:

    import torch.utils.cpp_extension as cpp_extension

    from prada.student.tiny import build_tiny_model

    def broken(*args, **kwargs):
        raise RuntimeError("Error building extension: g++ not found")

    load_kernel.cache_clear()
    monkeypatch.setattr(cpp_extension, "load", broken)
    try:
        with caplog.at_level(logging.WARNING, logger="prada.evaluation.decode_kernel"):
            assert load_kernel() is None
            # 32-dim heads, which the kernel takes: only the failed build keeps it away
            lm = build_tiny_model(len(tiny_student.tokenizer), hidden_size=128).to(torch.bfloat16)
            before = lm.config._attn_implementation
            assert not use_decode_kernel(lm) and lm.config._attn_implementation == before != KERNEL_IMPLEMENTATION
        assert "g++ not found" in caplog.text and "decoding uses SDPA" in caplog.text
        with pytest.raises(RuntimeError, match="not available"):
            decode_attention(*_inputs(1, 1, 3, 4, 64, 4), torch.ones(1, 4, dtype=torch.bool), 0.125)
    finally:
        load_kernel.cache_clear()


@pytest.mark.slow
def test_the_portable_build_computes_the_same(tmp_path) -> None:
    """The plain-loop path (machines without AVX512-BF16), built on its own, gives the same result."""
    from torch.utils.cpp_extension import load

    portable = load(name="prada_decode_attention_portable_test", sources=[str(SOURCE)], build_directory=str(tmp_path),
                    extra_cflags=["-O2", "-DPRADA_DECODE_PORTABLE"], verbose=False)
    q, k, v = _inputs(3, 2, 3, 37, 64, capacity=50)
    mask = _left_padded([37, 20, 2], 37)
    torch.testing.assert_close(portable.decode_attention(q, k, v, mask, 0.125).float(), _reference(q, k, v, mask),
                               rtol=8e-3, atol=8e-3)
    torch.testing.assert_close(portable.decode_attention(q, k, v, mask, 0.125).float(),
                               decode_attention(q, k, v, mask, 0.125).float(), rtol=8e-3, atol=8e-3)
    assert not portable.vectorized() and load_kernel().vectorized()


def test_a_build_without_the_vector_path_is_not_used(monkeypatch, caplog) -> None:
    """Without AVX512-BF16 the kernel's plain loops are slower than SDPA: decoding keeps SDPA."""
    import torch.utils.cpp_extension as cpp_extension

    class _Portable:
        @staticmethod
        def vectorized() -> bool:
            return False

    load_kernel.cache_clear()
    monkeypatch.setattr(cpp_extension, "load", lambda *args, **kwargs: _Portable())
    try:
        with caplog.at_level(logging.INFO, logger="prada.evaluation.decode_kernel"):
            assert load_kernel() is None
        assert "no AVX512-BF16" in caplog.text
    finally:
        load_kernel.cache_clear()
