"""End to end: a diverse teacher corpus (several samples per question, as a committed
``samples/<task>.jsonl``) is replayed with ``teacher.backend: replay`` and a tiny student trains on
every kept rationale, through the runner behind ``prada run``."""

from __future__ import annotations

import json
from pathlib import Path

from prada.config import load_config
from prada.runner import run_experiment

SOURCE, TARGET = "synth_last_letters", "synth_last_letters_long"
D = 4
N_QUESTIONS = 12


def write_diverse_samples(folder: Path) -> Path:
    """D samples per question, in the format every teacher run writes (provenance included):
    sample 0 the gold rationale (greedy), 1 a paraphrase, 2 a wrong answer, 3 a duplicate of 0."""
    from prada.data.tasks import get_task
    from prada.teacher.generate import source_subset

    task = get_task(SOURCE)
    trigger = task.trigger.strip()
    teacher = {"backend": "hf", "model": "test-teacher", "prompt": "zero_shot_cot", "chat": False}
    lines = []
    # the questions the teacher stage will ask: data.max_source_examples=N_QUESTIONS, data.seed=0
    for ex in source_subset(task.load("train"), N_QUESTIONS, 0, SOURCE):
        texts = [(ex.rationale, ex.answer), (f"Step by step: {ex.rationale}", ex.answer),
                 ("I am not sure.", "zzz"), (f"  {ex.rationale} ", ex.answer)]
        for i, (rationale, answer) in enumerate(texts):
            sampling = {"temperature": 0.0 if i == 0 else 0.7, "top_p": 1.0, "max_tokens": 128}
            if i:
                sampling["seed"] = i
            lines.append({"example_id": ex.id, "dataset": ex.dataset, "question": ex.question, "gold": ex.answer,
                          "sample_index": i, "rationale": f" {rationale}", "answer_completion": f"{trigger} {answer}.",
                          "teacher": teacher, "sampling": sampling})
    folder.mkdir(parents=True)
    path = folder / f"{SOURCE}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    return path


def test_a_diverse_corpus_replays_and_trains_a_student(tiny_model_dir: Path, tmp_path: Path) -> None:
    samples = write_diverse_samples(tmp_path / "teachers" / "diverse" / "samples")
    out = tmp_path / "run"
    overrides = {
        "output_dir": out, "methods": "[ft_cot, prada]", "seeds": "[0]",
        "data.source": SOURCE, "data.targets": f"[{TARGET}]", "data.max_source_examples": N_QUESTIONS,
        "data.max_target_examples": 12,
        "teacher.backend": "replay", "teacher.model": "test-teacher", "teacher.replay_dir": samples.parent,
        "teacher.samples": D,
        "student.model": tiny_model_dir, "student.max_length": 96,
        "prompt_encoder.num_virtual_tokens": 4, "prompt_encoder.hidden_size": 16,
        "adversarial.classifier_hidden": 16,
        "train.lr": 1e-3, "train.batch_size": 4, "train.max_steps": 3, "train.save_every": 0,
        "eval.max_examples": 4, "eval.max_new_tokens": 8, "eval.zero_shot_baseline": "false",
    }
    run_experiment(load_config(None, [f"{k}={v}" for k, v in overrides.items()]), report=False)

    summary = json.loads((out / "teacher" / "summary.json").read_text())
    assert summary["backend"] == "replay" and summary["samples_per_question"] == D and summary["complete"]
    # per question: samples 0 and 1 kept, 2 wrong, 3 a duplicate of 0
    assert summary["kept"] == 2 * N_QUESTIONS and summary["duplicates_dropped"] == N_QUESTIONS
    assert summary["samples_correct"] == 3 * N_QUESTIONS and summary["greedy_correct"] == N_QUESTIONS
    corpus = [json.loads(line) for line in (out / "teacher" / "corpus.jsonl").read_text().splitlines()]
    assert sorted({r["sample_index"] for r in corpus}) == [0, 1]
    assert all(r["teacher"]["model"] == "test-teacher" for r in corpus)
    assert {r["sampling"].get("seed") for r in corpus} == {None, 1}
    for method in ("ft_cot", "prada"):
        train = json.loads((out / "train" / f"{method}-seed0" / "summary.json").read_text())
        assert train["steps"] == 3
        assert train["examples"]["source"] == 2 * N_QUESTIONS
        assert train["examples"]["source_questions"] == N_QUESTIONS
        assert (out / "eval" / f"{method}-seed0" / SOURCE / "metrics.json").is_file()
