"""``eval.device``: where evaluation generates and extracts features (CPU checks; the CUDA path is
in ``tests/test_gpu.py``)."""

from __future__ import annotations

import pytest
import torch

from prada.config import StudentConfig
from prada.errors import EvaluationError
from prada.evaluation import evaluate as ev
from prada.evaluation import evaluate_model

from .helpers import HandTask, eval_cfg, hand_examples


def test_auto_is_the_gpu_when_one_is_visible_else_the_cpu() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert ev.resolve_device("auto").type == expected
    assert ev.resolve_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("bad", ["gpu0", "tpu", "mps"])
def test_a_bad_device_names_the_key_and_the_valid_values(bad) -> None:
    with pytest.raises(EvaluationError, match=rf"eval.device '{bad}': use 'auto', 'cpu', 'cuda' or 'cuda:N'"):
        ev.resolve_device(bad)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_asking_for_cuda_without_a_gpu_fails_before_loading(tmp_path) -> None:
    with pytest.raises(EvaluationError, match="no CUDA device is visible"):
        ev.load_model_for_eval(tmp_path / "missing", StudentConfig(), "cuda:0")


def test_the_model_is_loaded_onto_the_evaluation_device(tiny_model_dir, tmp_path) -> None:
    cfg = eval_cfg(StudentConfig(model=str(tiny_model_dir)), max_new_tokens=4, device="cpu")
    student, _ = ev.load_model_for_eval(str(tiny_model_dir), cfg.student, "cpu")
    assert student.device == torch.device("cpu")
    metrics = evaluate_model(str(tiny_model_dir), HandTask(hand_examples(2)), cfg, tmp_path / "ev", "student")
    assert metrics.device == "cpu"


@pytest.mark.parametrize("dtype, expected", [("bfloat16", torch.bfloat16), ("float32", torch.float32)])
def test_eval_dtype_sets_the_weights_and_is_recorded(tiny_model_dir, tmp_path, dtype, expected) -> None:
    cfg = eval_cfg(StudentConfig(model=str(tiny_model_dir)), max_new_tokens=4, device="cpu", dtype=dtype)
    student, info = ev.load_model_for_eval(str(tiny_model_dir), cfg.student, "cpu", dtype)
    assert student.causal_lm.get_input_embeddings().weight.dtype == expected and info["dtype"] == dtype
    metrics = evaluate_model(str(tiny_model_dir), HandTask(hand_examples(2)), cfg, tmp_path / "ev", "student")
    assert metrics.dtype == dtype


def test_eval_dtype_auto_follows_the_hardware(tiny_model_dir, monkeypatch) -> None:
    from prada import hardware

    for native, expected in ((True, torch.bfloat16), (False, torch.float32)):
        monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda native=native: native)
        student, info = ev.load_model_for_eval(str(tiny_model_dir), StudentConfig(model=str(tiny_model_dir)), "cpu", "auto")
        assert student.causal_lm.get_input_embeddings().weight.dtype == expected


def test_a_prompt_encoder_stays_fp32_under_bf16_generation(tiny_model_dir, tmp_path) -> None:
    from .test_evaluate import _ptuning_checkpoint

    ckpt = _ptuning_checkpoint(tiny_model_dir, tmp_path / "ckpt")
    student, _ = ev.load_model_for_eval(ckpt, StudentConfig(), "cpu", "bfloat16")
    assert all(p.dtype == torch.float32 for p in student.prompt_encoder.parameters())
    assert student.virtual_token_embeddings(2).dtype == torch.bfloat16  # cast to the LM's dtype
