"""Mixed precision that picks itself, and the bf16 fast path against the fp32 reference.

``train.mixed_precision: auto`` / ``eval.dtype: auto`` resolve to bf16 where the hardware
multiplies bf16 natively, fp32 elsewhere; fp32 keeps the reference kernels (chunked LM head,
``foreach`` AdamW), bf16 the fused ones."""

from __future__ import annotations

import math

import pytest
import torch

from prada import hardware
from prada.errors import ConfigError, TrainingError
from prada.io import read_json, read_jsonl
from prada.training import train
from prada.training.loop import make_optimizer


@pytest.mark.parametrize("native, expected", [(True, ("bf16", "bfloat16")), (False, ("no", "float32"))])
def test_auto_follows_the_cpu(monkeypatch, native, expected) -> None:
    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: native)
    assert hardware.resolve_mixed_precision("auto", "cpu") == expected[0]
    assert hardware.resolve_eval_dtype("auto", "cpu") == expected[1]
    # An explicit value is kept whatever the hardware.
    assert hardware.resolve_mixed_precision("no", "cpu") == "no"
    assert hardware.resolve_eval_dtype("bfloat16", "cpu") == "bfloat16"


def test_a_bad_value_names_the_key() -> None:
    with pytest.raises(ConfigError, match="train.mixed_precision"):
        hardware.resolve_mixed_precision("bf32", "cpu")
    with pytest.raises(ConfigError, match="eval.dtype"):
        hardware.resolve_eval_dtype("half", "cpu")


def test_auto_is_resolved_printed_and_recorded(make_cfg, corpus, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: True)
    summary = train(make_cfg("train.mixed_precision=auto", "train.max_steps=1"), "ft_cot", 0, tmp_path / "run", corpus)
    assert summary.mixed_precision == "bf16" and summary.mixed_precision_requested == "auto"
    assert read_json(tmp_path / "run" / "summary.json")["mixed_precision"] == "bf16"
    assert "precision: bf16 (train.mixed_precision=auto" in capsys.readouterr().err


@pytest.mark.parametrize("method", ["ft_cot", "prada"])
def test_bf16_and_fp32_losses_agree_at_step_0(make_cfg, corpus, tmp_path, method) -> None:
    """Same weights, same first batch: the bf16 fast path's L_y (and L_d) are the fp32 ones within
    2 % (bf16 keeps 8 bits of mantissa; the loss is an average over many tokens)."""
    logs = {}
    for precision in ("no", "bf16"):
        cfg = make_cfg(f"train.mixed_precision={precision}", "train.max_steps=1", "adversarial.classifier_dropout=0.0")
        train(cfg, method, 0, tmp_path / precision, corpus)
        logs[precision] = read_jsonl(tmp_path / precision / "log.jsonl")[0]
    assert logs["bf16"]["L_y"] == pytest.approx(logs["no"]["L_y"], rel=2e-2)
    if method == "prada":
        assert logs["bf16"]["L_d"] == pytest.approx(logs["no"]["L_d"], rel=2e-2)


@pytest.mark.parametrize("method", ["ft", "ft_cot", "ptuning_cot", "dann_cot", "prada"])
def test_every_method_trains_in_bf16_on_the_cpu(make_cfg, corpus, tmp_path, method) -> None:
    summary = train(make_cfg("train.mixed_precision=bf16", "train.max_steps=3"), method, 0, tmp_path / "r", corpus)
    assert summary.mixed_precision == "bf16"
    log = read_jsonl(tmp_path / "r" / "log.jsonl")
    assert len(log) == 3 and all(math.isfinite(r["L_y"]) for r in log)
    assert log[-1]["L_y"] < log[0]["L_y"]  # it learns (lr 1e-3 on a tiny model)


def test_resuming_in_another_precision_is_refused(make_cfg, corpus, tmp_path) -> None:
    cfg = make_cfg("train.mixed_precision=bf16", "train.max_steps=4", "train.save_every=2")
    train(cfg, "ft_cot", 0, tmp_path / "r", corpus)
    (tmp_path / "r" / "summary.json").unlink()  # as if it had stopped after the step-2 checkpoint
    import shutil

    shutil.rmtree(tmp_path / "r" / "final")
    with pytest.raises(TrainingError, match="precision 'bf16'"):
        train(make_cfg("train.mixed_precision=no", "train.max_steps=4", "train.save_every=2"), "ft_cot", 0,
              tmp_path / "r", corpus)


def test_fp32_keeps_the_reference_optimizer_and_bf16_fuses_it() -> None:
    params = [torch.nn.Parameter(torch.randn(4, 3))]
    reference = make_optimizer([{"params": params, "lr": 1e-3}], fused=False)
    assert reference.defaults["foreach"] and not reference.defaults["fused"]
    fast = make_optimizer([{"params": params, "lr": 1e-3}], fused=True)
    assert fast.defaults["fused"]


def test_bf16_resume_gives_weights_identical_to_an_uninterrupted_run(make_cfg, corpus, tmp_path, monkeypatch) -> None:
    from prada.student.student import Student
    from prada.training import loop

    cfg = make_cfg("train.mixed_precision=bf16", "train.max_steps=4", "train.save_every=2",
                   "adversarial.classifier_dropout=0.1")
    train(cfg, "prada", 0, tmp_path / "full", corpus)
    real_clip, calls = loop.clip_gradients, []

    def ctrl_c_in_step_3(*args):  # while the step-2 checkpoint may still be being written
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_clip(*args)

    monkeypatch.setattr(loop, "clip_gradients", ctrl_c_in_step_3)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, "prada", 0, tmp_path / "resumed", corpus)
    monkeypatch.setattr(loop, "clip_gradients", real_clip)
    assert train(cfg, "prada", 0, tmp_path / "resumed", corpus).resumed_from_step == 2
    a, b = Student.from_checkpoint(tmp_path / "full/final"), Student.from_checkpoint(tmp_path / "resumed/final")
    for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.equal(pa, pb), name


def test_compile_auto_is_the_bf16_cpu_path_with_a_compiler(monkeypatch) -> None:
    monkeypatch.setattr(hardware, "has_cxx_compiler", lambda: True)
    assert hardware.resolve_compile("auto", "bf16", "cpu") is True
    assert hardware.resolve_compile("auto", "no", "cpu") is False  # the fp32 reference path
    assert hardware.resolve_compile("yes", "no", "cpu") is True
    monkeypatch.setattr(hardware, "has_cxx_compiler", lambda: False)
    assert hardware.resolve_compile("auto", "bf16", "cpu") is False
    with pytest.raises(ConfigError, match="train.compile"):
        hardware.resolve_compile("maybe", "bf16", "cpu")


@pytest.mark.skipif(not hardware.has_cxx_compiler(), reason="inductor needs a C++ compiler")
def test_compiled_layers_train_and_match_eager_at_step_0(make_cfg, corpus, tmp_path) -> None:
    """torch.compile of the decoder layers: same first-step loss as eager within bf16 rounding,
    it trains, records that it compiled, and resumes."""
    logs = {}
    for mode in ("no", "yes"):
        cfg = make_cfg("train.mixed_precision=bf16", f"train.compile={mode}", "train.max_steps=3")
        summary = train(cfg, "prada", 0, tmp_path / mode, corpus)
        assert summary.compiled is (mode == "yes")
        assert summary.attention == ("sdpa_recompute" if mode == "yes" else "model")  # train.attention: auto
        logs[mode] = read_jsonl(tmp_path / mode / "log.jsonl")
    assert logs["yes"][0]["L_y"] == pytest.approx(logs["no"][0]["L_y"], rel=2e-2)
    assert logs["yes"][-1]["L_y"] < logs["yes"][0]["L_y"]
