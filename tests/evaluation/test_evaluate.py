from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import prada.evaluation.evaluate as ev
from prada.config import PromptEncoderConfig, StudentConfig
from prada.errors import EvaluationError
from prada.evaluation import evaluate_model, extract_features, select_examples
from prada.evaluation.generate import Generation, GenerationStats
from prada.io import read_json, read_jsonl

from .helpers import HandTask, eval_cfg, hand_examples


def _scripted(texts_by_call: list[list[str]]):
    """A stand-in for greedy_generate that returns given texts (one list per call)."""
    calls: list[list[list[int]]] = []

    def fake(student, prompts, *, max_new_tokens, batch_size, stop=None, **kw):
        texts = texts_by_call[len(calls)]
        calls.append([list(p) for p in prompts])
        assert len(texts) == len(prompts)
        gens = [Generation((1,) * 3, t, "stop") for t in texts]
        return gens, GenerationStats(3 * len(gens), 0.5, 1)

    return fake, calls


def test_student_style_metrics_exact_on_hand_made_outputs(tiny_student, tmp_path, monkeypatch) -> None:
    examples = hand_examples(5)  # golds: 1, 3, 5, 7, 9
    outputs = [
        " 0 + 1 = 1. --> 1 END",          # correct
        " 1 + 2 = 3. --> 4 END",          # wrong: the answer after --> counts
        " so 2 + 3 = 5 apples",           # no -->: last number, correct
        " --> 7.0 END",                   # numeric comparison: correct
        " I do not know END",             # no answer
    ]
    fake, calls = _scripted([outputs])
    monkeypatch.setattr(ev, "greedy_generate", fake)
    task = HandTask(examples)
    metrics = evaluate_model(tiny_student, task, eval_cfg(), tmp_path / "out", "student")
    assert (metrics.n, metrics.correct, metrics.no_answer) == (5, 3, 1)
    assert metrics.accuracy == pytest.approx(0.6)
    assert metrics.generated_tokens == 15 and metrics.tokens_per_s == pytest.approx(30.0)
    assert metrics.task == "hand" and metrics.split == "test" and metrics.wall_s is not None and metrics.step is None
    assert metrics.format == 1 and metrics.per_question is not None
    assert dataclasses.asdict(metrics.per_question) == {"ids": [e.id for e in examples], "correct": [
        int(json.loads(line)["correct"]) for line in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()]}
    preds = read_jsonl(tmp_path / "out" / "predictions.jsonl")
    assert [p["id"] for p in preds] == [e.id for e in examples]
    assert [p["prediction"] for p in preds] == ["1", "4", "5", "7.0", None]
    assert [p["correct"] for p in preds] == [True, False, True, True, False]
    assert set(preds[0]) >= {"id", "question", "gold", "output", "prediction", "correct"}
    written = read_json(tmp_path / "out" / "metrics.json")
    assert written == metrics.to_json() and written["format"] == 1 and list(written)[:5] == [
        "task", "split", "n", "correct", "accuracy"]
    # The prompt is Fine-tune-CoT's "{question} ###".
    tok = tiny_student.tokenizer
    assert tok.decode(calls[0][0]).endswith(examples[0].question + " ###")


def test_answer_only_style_takes_the_first_candidate(tiny_student, tmp_path, monkeypatch) -> None:
    fake, _ = _scripted([[" 1 END", " 3 or 4 END"]])
    monkeypatch.setattr(ev, "greedy_generate", fake)
    m = evaluate_model(tiny_student, HandTask(hand_examples(2)), eval_cfg(), tmp_path, "answer_only")
    assert m.correct == 2


def test_zero_shot_cot_two_stages(tiny_student, tmp_path, monkeypatch) -> None:
    examples = hand_examples(2)
    fake, calls = _scripted([
        [" He has 0 + 1 = 1 apple.\nQ: a new question", " 1 + 2 is 3."],  # stage 1 (rationales)
        [" 1.", " 4."],                                                   # stage 2 (answers)
    ])
    monkeypatch.setattr(ev, "greedy_generate", fake)
    m = evaluate_model(tiny_student, HandTask(examples), eval_cfg(), tmp_path, "zero_shot_cot")
    assert (m.correct, m.n) == (1, 2)
    tok = tiny_student.tokenizer
    stage1 = tok.decode(calls[0][0], skip_special_tokens=True)
    assert stage1 == f"Q: {examples[0].question}\nA: Let's think step by step."
    stage2 = tok.decode(calls[1][0], skip_special_tokens=True)
    # Kojima: stage 1 + rationale (cut at a new "Q:") + " " + "\nTherefore, ... is"
    assert stage2 == stage1 + " He has 0 + 1 = 1 apple. \nTherefore, the answer (arabic numerals) is"
    preds = read_jsonl(tmp_path / "predictions.jsonl")
    assert preds[0]["rationale"] == " He has 0 + 1 = 1 apple." and preds[1]["prediction"] == "4"


def test_end_to_end_tiny_model_cache_and_force(tiny_model_dir, tmp_path, monkeypatch) -> None:
    from prada.data import get_task

    task = get_task("synth_last_letters")
    cfg = eval_cfg(StudentConfig(model=str(tiny_model_dir)), max_examples=6, max_new_tokens=8, batch_size=4)
    out = tmp_path / "eval" / "base" / task.name
    metrics = evaluate_model(str(tiny_model_dir), task, cfg, out, "student")
    lines = (out / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == metrics.n == 6
    assert metrics.generated_tokens > 0 and 0.0 <= metrics.accuracy <= 1.0
    # The same seeded subset for any model.
    chosen = [json.loads(line)["id"] for line in lines]
    assert chosen == [e.id for e in select_examples(task.load("test"), 6, seed=0)]
    # metrics.json exists: skipped (no generation at all) unless forced.
    monkeypatch.setattr(ev, "greedy_generate", lambda *a, **k: pytest.fail("should be cached"))
    assert evaluate_model(str(tiny_model_dir), task, cfg, out, "student") == metrics
    fake, _ = _scripted([[" x --> y END"] * 6])
    monkeypatch.setattr(ev, "greedy_generate", fake)
    assert evaluate_model(str(tiny_model_dir), task, cfg, out, "student", force=True).generated_tokens == 18


def test_select_examples_is_seeded_and_ordered() -> None:
    exs = hand_examples(20)
    a = select_examples(exs, 7, seed=3)
    assert a == select_examples(exs, 7, seed=3) and len(a) == 7
    assert [int(e.id.split("/")[1]) for e in a] == sorted(int(e.id.split("/")[1]) for e in a)
    assert select_examples(exs, 7, seed=4) != a
    assert select_examples(exs, None, seed=0) == exs and select_examples(exs, 100, seed=0) == exs


def _ptuning_checkpoint(tiny_model_dir: Path, path: Path) -> Path:
    from prada.student.student import Student

    torch.manual_seed(0)
    student = Student.build(StudentConfig(model=str(tiny_model_dir)), "full",
                            PromptEncoderConfig(num_virtual_tokens=3, hidden_size=16))
    with torch.no_grad():  # make the virtual tokens matter
        for p in student.prompt_encoder.parameters():
            p.add_(torch.randn_like(p))
    return student.save_checkpoint(path, method="prada", step=7)


def test_ptuning_checkpoint_batched_equals_single_and_hf(tiny_model_dir, tmp_path) -> None:
    from prada.evaluation.generate import greedy_generate
    from prada.student.student import load_student

    ckpt = _ptuning_checkpoint(tiny_model_dir, tmp_path / "ckpt")
    student = load_student(ckpt)
    assert student.num_virtual_tokens == 3
    tok = student.tokenizer
    prompts = [tok(q + " ###")["input_ids"] for q in ("Tom had 12 marbles.", "hi", "How many apples are there now?")]
    batched, _ = greedy_generate(student, prompts, max_new_tokens=8, batch_size=3)
    for p, g in zip(prompts, batched):
        [single], _ = greedy_generate(student, [p], max_new_tokens=8, batch_size=1)
        assert single == g
        ids = torch.tensor([p])
        ref = student.generate(ids, torch.ones_like(ids), max_new_tokens=8)[0].tolist()
        assert ref[: len(g.token_ids)] == list(g.token_ids)
    # evaluate_model reads method/step from the checkpoint.
    cfg = eval_cfg(max_new_tokens=4)
    m = evaluate_model(ckpt, HandTask(hand_examples(3)), cfg, tmp_path / "ev", "student")
    assert (m.method, m.step, m.n) == ("prada", 7, 3)
    # Loaded once, passed in: the same metrics, provenance kept.
    loaded, info = ev.load_model_for_eval(ckpt, cfg.student)
    m2 = evaluate_model(loaded, HandTask(hand_examples(3)), cfg, tmp_path / "ev2", "student",
                        model_name=str(ckpt), model_info=info)
    assert (m2.model, m2.method, m2.step, m2.correct) == (m.model, m.method, m.step, m.correct)


def test_checkpoint_takes_the_question_limit_of_the_evaluation(tiny_model_dir, tmp_path) -> None:
    """A limit saved with the checkpoint at training time does not refuse longer eval questions."""
    from prada.errors import DataError
    from prada.student.student import Student

    student = Student.build(StudentConfig(model=str(tiny_model_dir), max_question_tokens=2), "full")
    ckpt = student.save_checkpoint(tmp_path / "ckpt", method="ft_cot", step=1)
    examples = hand_examples(2)
    with pytest.raises(DataError, match="max_question_tokens=2"):
        ev.student_prompts(ev.load_model_for_eval(ckpt, StudentConfig(max_question_tokens=2))[0], examples)
    loaded, _ = ev.load_model_for_eval(ckpt, StudentConfig(max_question_tokens=512))
    assert loaded.student_cfg.max_question_tokens == 512
    assert len(ev.student_prompts(loaded, examples)) == 2


def test_extract_features_shapes_batch_invariance_and_npz(tiny_student, tmp_path) -> None:
    from prada.data import get_task

    src = get_task("synth_last_letters").load("test")[:5]
    tgt = get_task("synth_coin_flip").load("test")[:3]
    cfg = eval_cfg(batch_size=4)
    out = tmp_path / "features" / "m.npz"
    feats = extract_features(tiny_student, {"src": src, "tgt": tgt}, cfg, out_path=out)
    assert feats["src"].shape == (5, tiny_student.hidden_size) and feats["tgt"].shape == (3, tiny_student.hidden_size)
    assert feats["src"].dtype == np.float32
    cfg1 = eval_cfg(batch_size=1)
    one = extract_features(tiny_student, {"src": src}, cfg1)
    np.testing.assert_allclose(one["src"], feats["src"], atol=1e-5)
    with np.load(out) as npz:
        assert sorted(npz.files) == ["src", "tgt"]
        np.testing.assert_array_equal(npz["tgt"], feats["tgt"])


def test_clear_errors(tiny_model_dir, tmp_path) -> None:
    task = HandTask(hand_examples(2))
    with pytest.raises(EvaluationError, match="not found"):
        evaluate_model(tmp_path / "runs" / "train" / "prada-seed0" / "final", task, eval_cfg(), tmp_path / "o")
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    with pytest.raises(EvaluationError, match="training run directory"):
        evaluate_model(str(tmp_path / "run"), task, eval_cfg(), tmp_path / "o")
    with pytest.raises(EvaluationError, match="prompt style"):
        evaluate_model(str(tiny_model_dir), task, eval_cfg(), tmp_path / "o", "fancy")  # type: ignore[arg-type]
    assert not (tmp_path / "o" / "metrics.json").exists()


def test_vllm_backend_errors(tiny_model_dir, tmp_path) -> None:
    task = HandTask(hand_examples(2))
    cfg = eval_cfg(StudentConfig(model=str(tiny_model_dir)), backend="vllm")
    ckpt = _ptuning_checkpoint(tiny_model_dir, tmp_path / "ckpt")
    with pytest.raises(EvaluationError, match="eval.backend: hf"):
        evaluate_model(ckpt, task, cfg, tmp_path / "o1")
    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(EvaluationError, match="vllm"):
            evaluate_model(str(tiny_model_dir), task, cfg, tmp_path / "o2")


def test_evaluate_tasks_decodes_every_task_in_one_stream(tiny_student, tmp_path, monkeypatch) -> None:
    from prada.evaluation import evaluate_tasks

    first = HandTask(hand_examples(4), name="first")
    second = HandTask([dataclasses.replace(e, id=f"second/{i}") for i, e in enumerate(hand_examples(3))],
                      name="second")
    cfg = eval_cfg(max_new_tokens=6, batch_size=3)
    alone = [evaluate_model(tiny_student, t, cfg, tmp_path / "alone" / t.name, "student") for t in (first, second)]
    calls: list[int] = []
    real = ev.greedy_generate

    def counted(student, prompts, **kw):
        calls.append(len(prompts))
        return real(student, prompts, **kw)

    monkeypatch.setattr(ev, "greedy_generate", counted)
    together = evaluate_tasks(tiny_student, [first, second], cfg,
                              [tmp_path / "together" / t.name for t in (first, second)], "student")
    assert calls == [7]  # one stream for both tasks
    for a, b, t in zip(alone, together, ("first", "second")):
        assert (a.task, a.n, a.correct, a.per_question) == (b.task, b.n, b.correct, b.per_question)
        assert read_jsonl(tmp_path / "alone" / t / "predictions.jsonl") == read_jsonl(
            tmp_path / "together" / t / "predictions.jsonl")
    # The shared generation is split by generated tokens.
    assert sum(m.generated_tokens for m in together) == sum(m.generated_tokens for m in alone)
    # A finished task is read back, not decoded again; only the other one is generated.
    (tmp_path / "together" / "second" / "metrics.json").unlink()
    again = evaluate_tasks(tiny_student, [first, second], cfg,
                           [tmp_path / "together" / t.name for t in (first, second)], "student")
    assert calls == [7, 3] and again[0] == together[0] and again[1].per_question == together[1].per_question
    with pytest.raises(ValueError, match="one out_dir"):
        evaluate_tasks(tiny_student, [first, second], cfg, [tmp_path / "x"], "student")
