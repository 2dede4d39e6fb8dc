"""``prada sweep``: points trained on train minus val, scored on the source's val split only."""

from __future__ import annotations

import csv
import json

import pytest

from prada.errors import ConfigError
from prada.sweep import best_marks, parse_grid
from test_runner import QUICKSTART, run_cli, shrunk_overrides


def test_parse_grid_is_the_cartesian_product_with_readable_folders():
    points = parse_grid(["train.lr=5e-5,1e-4", "adversarial.lambda_max=0.1"])
    assert [p.overrides for p in points] == [
        ["train.lr=5e-5", "adversarial.lambda_max=0.1"],
        ["train.lr=1e-4", "adversarial.lambda_max=0.1"],
    ]
    assert [p.slug for p in points] == ["lr_5e-5-lambda_max_0.1", "lr_1e-4-lambda_max_0.1"]


def test_a_value_cannot_put_a_point_outside_the_sweep_folder(tmp_path):
    points = parse_grid(["student.model=../../elsewhere,/models/a"])
    assert [p.slug for p in points] == ["model_..-..-elsewhere", "model_-models-a"]
    for p in points:
        assert (tmp_path / p.slug).parent == tmp_path
    with pytest.raises(ConfigError, match="two points would share a folder"):
        parse_grid(["student.model=a/b,a\\b"])


@pytest.mark.parametrize("bad", [["train.lr"], ["train.lr="], ["train.lr=1,1"], ["train.lr=1", "train.lr=2"], []])
def test_parse_grid_rejects_malformed_params(bad):
    with pytest.raises(ConfigError):
        parse_grid(bad)


def test_sweep_without_a_validation_split_is_refused(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "sweep"
    code = run_cli(["sweep", str(QUICKSTART), *shrunk_overrides(tiny_model_dir, out),
                    "--param", "train.lr=1e-3,1e-2"])
    assert code != 0
    assert "data.val_fraction" in capsys.readouterr().err
    assert not out.exists()


def test_sweep_scores_each_point_on_source_val_only(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "sweep"
    args = ["sweep", str(QUICKSTART),
            *shrunk_overrides(tiny_model_dir, out, **{"methods": "[ft_cot]", "train.max_steps": 2,
                                                      "train.save_every": 0, "data.val_fraction": 0.25}),
            "--param", "train.lr=1e-3,1e-2"]
    assert run_cli(args) == 0
    progress = capsys.readouterr().err.splitlines()
    assert sum(line.startswith("sweep quickstart: 2/2 points in ") for line in progress) == 1
    assert sum(line.startswith("train ft_cot-seed0: 2/2 steps in ") for line in progress) == 2  # one per point

    for slug in ("lr_1e-3", "lr_1e-2"):
        run = out / slug
        assert run.is_dir(), slug
        evaluated = sorted(p.parent.name for p in run.glob("eval/*/*/metrics.json"))
        assert evaluated == ["synth_coin_flip"], "targets are never evaluated in a sweep"
        metrics = json.loads((run / "eval" / "ft_cot-seed0" / "synth_coin_flip" / "metrics.json").read_text())
        assert metrics["split"] == "val" and metrics["n"] == 6
        # Trained on train minus val: the teacher corpus holds no val question.
        val_questions = {json.loads(line)["question"] for line in
                         (run / "eval" / "ft_cot-seed0" / "synth_coin_flip" / "predictions.jsonl").read_text().splitlines()}
        corpus_questions = {json.loads(line)["question"] for line in
                            (run / "teacher" / "corpus.jsonl").read_text().splitlines()}
        assert val_questions and not val_questions & corpus_questions
        assert not list(run.glob("features/*"))

    with (out / "sweep.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["point"] for r in rows] == ["train.lr=1e-3", "train.lr=1e-2"]
    accuracies = [float(r["val accuracy (%)"]) for r in rows]
    best = [r for r in rows if r["best"] in ("yes", "tie")]
    assert best and all(float(r["val accuracy (%)"]) == max(accuracies) for r in best)
    assert {r["best"] for r in best} == ({"yes"} if len(best) == 1 else {"tie"})

    # Re-running the sweep trains nothing and rebuilds the same table.
    table = (out / "sweep.md").read_text()
    logs = {p: p.stat().st_mtime_ns for p in out.glob("*/train/*/log.jsonl")}
    assert run_cli(args) == 0
    assert (out / "sweep.md").read_text() == table
    assert {p: p.stat().st_mtime_ns for p in logs} == logs


def test_best_marks_single_best_ties_and_missing_points():
    assert best_marks([0.1, 0.3, 0.2]) == ["", "yes", ""]
    assert best_marks([0.025, 0.025, 0.0, 0.0]) == ["tie", "tie", "", ""]
    assert best_marks([None, 0.0, None]) == ["", "yes", ""]
    assert best_marks([None, None]) == ["", ""]
