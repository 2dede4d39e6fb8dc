"""``metrics.json`` as a typed, versioned result: written with ``format: 1``, files written before
versions (no ``format``) still read, and a damaged file is one error naming it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prada.errors import RunDirError
from prada.eval_metrics import EVAL_METRICS_FORMAT, EvalMetrics, PerQuestion

RESULTS = Path(__file__).resolve().parents[1] / "results"

FULL = {"task": "addsub", "split": "test", "n": 2, "correct": 1, "accuracy": 0.5, "no_answer": 0,
        "model": "runs/x/train/prada-seed0/final", "method": "prada", "step": 40, "prompt_style": "student",
        "chat_template": False, "backend": "hf", "device": "cpu", "dtype": "float32", "batch_size": 8,
        "max_new_tokens": 128, "max_examples": None, "subset_seed": 0, "generated_tokens": 20,
        "generation_s": 1.5, "tokens_per_s": 13.33, "wall_s": 2.0,
        "per_question": {"ids": ["addsub/0", "addsub/1"], "correct": [1, 0]}}


def test_written_metrics_hold_every_field_in_order_then_the_format(tmp_path):
    metrics = EvalMetrics.from_json(FULL)
    assert metrics.format == 0 and metrics.per_question == PerQuestion(["addsub/0", "addsub/1"], [1, 0])
    written = EvalMetrics(**{**vars(metrics), "format": EVAL_METRICS_FORMAT})
    path = tmp_path / "metrics.json"
    written.write(path)
    raw = json.loads(path.read_text())
    assert raw == {**FULL, "format": 1} and list(raw) == [*FULL, "format"]
    assert EvalMetrics.read(path) == written


def test_a_file_from_before_versions_reads_as_format_0_with_missing_fields_none():
    old = EvalMetrics.from_json({"task": "svamp", "n": 4, "correct": 3, "accuracy": 0.75, "extra": 1})
    assert (old.format, old.device, old.per_question, old.step) == (0, None, None, None)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"accuracy": None}, "accuracy: must not be null"),
        ({"n": "2"}, "n: expected an integer, got '2'"),
        ({"correct": True}, "correct: expected an integer, got True"),
        ({"accuracy": "0.5"}, "accuracy: expected a number"),
        ({"chat_template": "no"}, "chat_template: expected true/false"),
        ({"model": 3}, "model: expected a string"),
        ({"per_question": [1, 0]}, "per_question: expected"),
        ({"n": 0}, "n: 0 must be > 0"),
    ],
)
def test_a_wrong_type_is_one_error_naming_the_file_and_field(tmp_path, change, fragment):
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({**FULL, **change}))
    with pytest.raises(RunDirError, match="re-evaluate that model") as e:
        EvalMetrics.read(path)
    assert str(e.value).startswith(f"{path}: not the metrics of an evaluation") and fragment in str(e.value)


def test_a_missing_field_or_a_list_is_one_error_naming_the_file(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"task": "addsub", "n": 2}))
    with pytest.raises(RunDirError, match=r"metrics.json: not the metrics of an evaluation \(no 'correct'; no 'accuracy'\)"):
        EvalMetrics.read(path)
    path.write_text("[1]")
    with pytest.raises(RunDirError, match=r"metrics.json: expected a JSON object, got list"):
        EvalMetrics.read(path)


def test_every_committed_metrics_file_reads_without_rewriting():
    paths = sorted(RESULTS.rglob("metrics.json"))
    if not paths:
        pytest.skip("no committed results")
    from prada.eval_metrics import EVAL_METRICS_FORMAT

    formats = set()
    for path in paths:
        metrics = EvalMetrics.read(path)
        assert metrics.format in (0, EVAL_METRICS_FORMAT) and metrics.n > 0, path
        formats.add(metrics.format)
        raw = json.loads(path.read_text())
        assert {k: v for k, v in metrics.to_json().items() if k in raw} == raw, path
        if metrics.format == EVAL_METRICS_FORMAT:  # written by this version: every field, as read
            assert metrics.to_json() == raw, path
    assert 0 in formats  # the results committed before versioning are still read
