"""Replaying a diverse teacher run: ``samples/<task>.jsonl`` holds every answered sample (D per
question), and ``teacher.backend: replay`` with ``teacher.replay_dir`` rebuilds the same corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_server import FakeOpenAIServer
from teacher_helpers import ArithTask, openai_cfg, read_lines

from prada.config import load_config
from prada.errors import TeacherError
from prada.teacher import run_teacher_stage

D = 4


def _replay_cfg(samples_dir: Path, *overrides: str):
    return load_config(None, ["methods=[ft_cot]", "teacher.backend=replay", "teacher.model=fake-teacher",
                              f"teacher.replay_dir={samples_dir}", f"teacher.samples={D}", *overrides])


@pytest.fixture
def diverse_run(server: FakeOpenAIServer, arith_task: ArithTask, tmp_path: Path) -> Path:
    """A D = 4 run of the scripted teacher (wrong answers and duplicates included)."""
    out = tmp_path / "live"
    summary = run_teacher_stage(openai_cfg(server.base_url, f"teacher.samples={D}"), out, task=arith_task)
    assert summary["complete"] and summary["duplicates_dropped"] > 0
    assert summary["samples_correct"] < summary["samples_answered"]  # some samples are wrong
    return out


def _without_backend(records: list[dict]) -> list[dict]:
    return [{**r, "teacher": {**r["teacher"], "backend": None}} for r in records]


def test_samples_file_holds_every_answered_sample_with_provenance(diverse_run: Path, arith_task: ArithTask) -> None:
    samples = read_lines(diverse_run / "samples" / "arith.jsonl")
    summary = json.loads((diverse_run / "summary.json").read_text())
    assert len(samples) == summary["samples_answered"] == D * len(arith_task.examples)
    assert sum(r["correct"] for r in samples) == summary["samples_correct"]
    assert sum(r["kept"] for r in samples) == summary["kept"]
    assert sum(r["correct"] for r in samples if r["sample_index"] == 0) == summary["greedy_correct"]
    for r in samples:
        assert r["teacher"]["model"] == "fake-teacher"
        if r["sample_index"] == 0:
            assert r["sampling"]["temperature"] == 0.0 and "seed" not in r["sampling"]
        else:
            assert r["sampling"]["temperature"] == 0.7 and r["sampling"]["seed"] == r["sample_index"]
    assert summary["files"]["samples"].endswith("samples/arith.jsonl")
    assert summary["this_run"]["completion_tokens_per_s"] > 0


def test_replay_of_several_samples_rebuilds_the_same_corpus(diverse_run: Path, arith_task: ArithTask,
                                                            tmp_path: Path) -> None:
    live = read_lines(diverse_run / "corpus.jsonl")
    assert len({r["sample_index"] for r in live}) > 1  # the live corpus is diverse
    summary = run_teacher_stage(_replay_cfg(diverse_run / "samples"), tmp_path / "replay", task=arith_task)
    replayed = read_lines(tmp_path / "replay" / "corpus.jsonl")
    assert summary["complete"] and summary["failed_samples"] == 0
    assert _without_backend(replayed) == _without_backend(live)
    assert all(r["teacher"]["backend"] == "replay" and r["teacher"]["model"] == "fake-teacher" for r in replayed)
    live_summary = json.loads((diverse_run / "summary.json").read_text())
    for key in ("kept", "samples_correct", "greedy_correct", "duplicates_dropped", "samples_no_answer"):
        assert summary[key] == live_summary[key], key
    # Fewer samples than recorded replays the first ones; more is refused up front.
    fewer = run_teacher_stage(_replay_cfg(diverse_run / "samples", "teacher.samples=2"), tmp_path / "two",
                              task=arith_task)
    assert {r["sample_index"] for r in read_lines(tmp_path / "two" / "corpus.jsonl")} <= {0, 1}
    assert fewer["complete"]
    with pytest.raises(TeacherError, match=f"gives {D} sample"):
        run_teacher_stage(_replay_cfg(diverse_run / "samples", f"teacher.samples={D + 1}"), tmp_path / "five",
                          task=arith_task)


@pytest.mark.parametrize(("override", "message"), [
    ("teacher.temperature=0.5", "temperature=0.7 but the config asks for 0.5; set teacher.temperature"),
    ("teacher.seed=3", "set teacher.seed"),
    ("teacher.max_rationale_tokens=64", "set teacher.max_rationale_tokens"),
    ("teacher.model=other-model", "set teacher.model: fake-teacher"),
    ("teacher.chat=true", "set teacher.chat: false"),
])
def test_replay_refuses_another_provenance(diverse_run: Path, arith_task: ArithTask, tmp_path: Path,
                                           override: str, message: str) -> None:
    with pytest.raises(TeacherError, match=message):
        run_teacher_stage(_replay_cfg(diverse_run / "samples", override), tmp_path / "x", task=arith_task)


def test_missing_sample_is_an_error_record(tmp_path: Path, arith_task: ArithTask) -> None:
    """A file with samples 0 and 2 of a question but not 1: sample 1 fails, the others replay."""
    ex = arith_task.examples[0]
    rec = {"question": ex.question, "gold": ex.answer, "answer_completion": f"Therefore, the answer (arabic numerals) is {ex.answer}."}
    lines = [{**rec, "sample_index": 0, "rationale": f" It is {ex.answer}."},
             {**rec, "sample_index": 2, "rationale": f" So {ex.answer}."}]
    folder = tmp_path / "rec"
    folder.mkdir()
    (folder / "arith.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    cfg = load_config(None, ["methods=[ft_cot]", "teacher.backend=replay", f"teacher.replay_dir={folder}",
                             "teacher.samples=3"])
    summary = run_teacher_stage(cfg, tmp_path / "out", task=ArithTask([ex]))
    assert summary["kept"] == 2 and summary["failed_examples"] == [f"{ex.id}#1"] and not summary["complete"]
    errors = [r for r in read_lines(tmp_path / "out" / "cache.jsonl") if r["status"] == "error"]
    assert "sample 1" in errors[0]["error"]


def test_bad_sample_index_is_refused(tmp_path: Path) -> None:
    from prada.teacher.backends.replay import ReplayBackend

    (tmp_path / "t.jsonl").write_text(json.dumps({"question": "q", "rationale": "r", "answer_completion": "a",
                                                  "gold": "1", "sample_index": "first"}) + "\n")
    with pytest.raises(TeacherError, match=r"record 1: sample_index must be an integer >= 0, got 'first'"):
        ReplayBackend("m", task="t", trigger="T", data_dir=None, replay_dir=tmp_path)



def test_teacher_stats_of_a_diverse_run(diverse_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from prada.teacher.stats import main, teacher_stats

    s = teacher_stats(diverse_run)
    summary = json.loads((diverse_run / "summary.json").read_text())
    samples = read_lines(diverse_run / "samples" / "arith.jsonl")
    assert s["greedy_accuracy_pct"] == summary["greedy_accuracy_pct"]
    assert s["sample_accuracy_pct"] == round(100 * summary["samples_correct"] / summary["samples_answered"], 2)
    assert sum(s["questions_by_kept"].values()) == s["questions"]
    assert sum(k * n for k, n in s["questions_by_kept"].items()) == s["kept"] == summary["kept"]
    # every kept rationale is distinct, and the scripted teacher repeats itself among correct samples
    n_correct = sum(r["correct"] for r in samples)
    assert s["distinct_correct_rationales_pct"] == round(100 * s["kept"] / n_correct, 2) < 100.0
    assert s["completion_tokens_per_s"] > 0 and 0 < s["generation_s"] <= s["wall_s"]
    assert main([str(diverse_run)]) == 0
    out = capsys.readouterr().out
    assert "teacher accuracy" in out and "distinct rationales" in out and "completion tokens/s" in out
    assert main([str(diverse_run / "nope")]) == 2
