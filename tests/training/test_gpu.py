"""The CUDA paths: evaluation and features on the GPU, training under bf16 autocast and with bf16
weights, every method. Skipped without a CUDA device (CI has none); run on a GPU machine with
``pytest -m gpu``. Fixtures: ``tests/training/conftest.py``."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from training_helpers import SOURCE, TARGET

from prada.data.tasks import get_task
from prada.evaluation import evaluate_model, extract_features
from prada.io import read_json, read_jsonl
from prada.student.student import Student
from prada.training import train

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_evaluation_on_the_gpu_matches_the_cpu(make_cfg, tiny_model_dir, tmp_path) -> None:
    """fp32 greedy decoding gives the same text on both devices, up to a rare near-tie of two logits."""
    task = get_task(SOURCE)
    outputs = {}
    for device in ("cpu", "cuda"):
        cfg = make_cfg(f"eval.device={device}", "eval.max_examples=8", "eval.max_new_tokens=12")
        metrics = evaluate_model(str(tiny_model_dir), task, cfg, tmp_path / device, "student")
        assert metrics.device.startswith(device) and metrics.n == 8
        outputs[device] = [r["output"] for r in read_jsonl(tmp_path / device / "predictions.jsonl")]
    same = sum(a == b for a, b in zip(outputs["cpu"], outputs["cuda"]))
    assert same >= 7, list(zip(outputs["cpu"], outputs["cuda"]))


def test_features_on_the_gpu_match_the_cpu(make_cfg, tiny_model_dir) -> None:
    examples = {SOURCE: get_task(SOURCE).load("test")[:6], TARGET: get_task(TARGET).load("test")[:4]}
    cpu = extract_features(str(tiny_model_dir), examples, make_cfg("eval.device=cpu"))
    gpu = extract_features(str(tiny_model_dir), examples, make_cfg("eval.device=cuda"))
    for domain in examples:
        assert gpu[domain].dtype == np.float32
        np.testing.assert_allclose(gpu[domain], cpu[domain], rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("method", ["ft_cot", "ptuning_cot", "dann_cot", "prada"])
@pytest.mark.parametrize("precision", ["train.mixed_precision=bf16", "student.dtype=bfloat16"])
def test_every_method_trains_on_the_gpu_in_bf16(make_cfg, corpus, tmp_path, method, precision) -> None:
    cfg = make_cfg(precision, "train.max_steps=4")
    summary = train(cfg, method, 0, tmp_path / "run", corpus)
    assert summary.device == "cuda" and summary.steps == 4
    log = read_jsonl(tmp_path / "run" / "log.jsonl")
    assert all(math.isfinite(r["L_y"]) for r in log)
    if method in ("dann_cot", "prada"):  # the classifier's loss, in fp32 under bf16
        assert all(math.isfinite(r["L_d"]) and r["L_d"] > 0.0 for r in log)
    final = Student.from_checkpoint(tmp_path / "run" / "final")
    assert all(torch.isfinite(p).all() for p in final.parameters())


def test_a_run_on_the_gpu_trains_evaluates_and_reports(make_cfg, tmp_path) -> None:
    from prada.runner import run_experiment

    cfg = make_cfg("methods=[prada]", "teacher.backend=gold", f"output_dir={tmp_path / 'exp'}", "eval.max_examples=6",
                   "eval.max_new_tokens=12", "report.feature_examples=8", "train.mixed_precision=bf16")
    root = run_experiment(cfg)
    summary = read_json(root / "train" / "prada-seed0" / "summary.json")
    assert summary["device"] == "cuda" and summary["mixed_precision"] == "bf16"
    for path in (root / "eval").rglob("metrics.json"):
        assert read_json(path)["device"].startswith("cuda"), path
    assert (root / "report" / "table.md").is_file()
