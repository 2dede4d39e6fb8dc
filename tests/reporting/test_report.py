from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from prada.errors import RunDirError
from prada.reporting import build_report, collect, parse_model_name
from prada.reporting.commands import register
from prada.reporting.tables import build_tables

from .helpers import SOURCE, TARGETS, correct_vector, make_run_dir, write_eval

PNGS = ("accuracy_vs_steps.png", "tsne.png", "training_curves.png", "pad.png")


def _csv_rows(path: Path) -> dict[tuple[str, str], dict[str, str]]:
    with path.open() as f:
        return {(r["method"], r["dataset"]): r for r in csv.DictReader(f)}


def test_parse_model_name() -> None:
    assert str(parse_model_name("prada-seed3@step-120")) == "prada-seed3@step-120"
    m = parse_model_name("ft_cot-seed0")
    assert (m.method, m.seed, m.snapshot_step) == ("ft_cot", 0, None)
    assert parse_model_name("zero_shot_cot").seed is None


def test_table_values_equal_hand_computed(run_dir: Path, tmp_path: Path) -> None:
    build_report([run_dir], tmp_path / "report")
    rows = _csv_rows(tmp_path / "report" / "table.csv")
    for method in ("ft_cot", "prada"):
        for task in (SOURCE, *TARGETS):
            accs = [100 * np.mean(correct_vector(method, s, task)) for s in (0, 1)]
            row = rows[(method, task)]
            assert float(row["accuracy_mean"]) == pytest.approx(np.mean(accs), abs=1e-4)
            assert float(row["accuracy_std"]) == pytest.approx(np.std(accs, ddof=1), abs=1e-4)
            assert row["n_questions"] == "20" and row["n_seeds"] == "2"
            assert row["role"] == ("source" if task == SOURCE else "target")
            lo, hi = float(row["ci95_low"]), float(row["ci95_high"])
            assert lo <= float(row["accuracy_mean"]) <= hi
    base = rows[("zero_shot_cot", SOURCE)]
    assert float(base["accuracy_mean"]) == pytest.approx(15.0) and base["accuracy_std"] == ""
    # PAD: ft_cot features are shifted per target (separable), prada's are identical (mixed).
    assert float(rows[("ft_cot", "svamp")]["pad_mean"]) > 1.5
    assert abs(float(rows[("prada", "svamp")]["pad_mean"])) < 0.6
    md = (tmp_path / "report" / "table.md").read_text()
    assert "multiarith (source, n=20)" in md and "addsub (target, n=20)" in md
    assert "PRADA (2 seeds)" in md and "target avg" in md and "Proxy A-distance" in md
    # The headline comparison, paired per question, with the seed-to-seed noise beside it.
    assert "## PRADA vs FT-CoT and the ablations" in md and "seed-to-seed std of target avg" in md
    assert "PRADA − P-Tuning-CoT" not in md  # no ablation run, no ablation row
    # Training cost, one row per run, from summary.json (steps, wall, tokens/s).
    cost = md.split("## Training cost", 1)[1]
    assert cost.count("| PRADA | ") == 2 and "| FT-CoT | 1 | 40 | 20 | 900 |" in cost


def test_ablation_rows_compare_prada_with_each_baseline_on_shared_seeds(tmp_path: Path) -> None:
    run = make_run_dir(tmp_path / "run", seeds=(0, 1), snapshots=False, features=False, logs=False)
    headline = build_tables(collect([run])).comparison["ft_cot"]
    # P-Tuning-CoT (PRADA without the adversary): 5 of 20 on every task, seed 0 only.
    for task in (SOURCE, *TARGETS):
        write_eval(run, "ptuning_cot-seed0", task, [1] * 5 + [0] * 15, 40)
    tables = build_tables(collect([run]))
    assert list(tables.comparison) == ["ft_cot", "ptuning_cot"]
    assert tables.comparison["ft_cot"] == headline  # adding a baseline leaves the headline as it was
    assert tables.comparison_seeds == {"ft_cot": [0, 1], "ptuning_cot": [0]}
    for task in (SOURCE, *TARGETS):
        # Only PRADA's seed 0 is compared: its seed 1 has no P-Tuning-CoT counterpart.
        delta, lo, hi = tables.comparison["ptuning_cot"][task]
        assert delta == pytest.approx(100 * np.mean(correct_vector("prada", 0, task)) - 25.0)
        assert lo <= delta <= hi
    prada_avg = np.mean([100 * np.mean(correct_vector("prada", 0, t)) for t in TARGETS])
    assert tables.comparison["ptuning_cot"]["target avg"][0] == pytest.approx(prada_avg - 25.0)
    build_report([run], tmp_path / "report")
    md = (tmp_path / "report" / "table.md").read_text()
    assert "| PRADA − FT-CoT (points) |" in md and "| PRADA − P-Tuning-CoT (points, seed 0 only) |" in md


def test_report_outputs_and_exact_regeneration(run_dir: Path, tmp_path: Path) -> None:
    index = build_report([run_dir], tmp_path / "a")
    assert index == tmp_path / "a" / "index.html"
    for name in (*PNGS, "table.md", "table.csv", "index.html"):
        assert (tmp_path / "a" / name).stat().st_size > 0, name
    html = index.read_text()
    assert html.count("data:image/png;base64,") == 4 and "<table>" in html
    build_report([run_dir], tmp_path / "b")
    for name in ("table.md", "table.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_seeds_in_separate_run_dirs_merge(tmp_path: Path) -> None:
    both = make_run_dir(tmp_path / "both", seeds=(0, 1), snapshots=False, logs=False, features=False)
    one = make_run_dir(tmp_path / "s0", seeds=(0,), snapshots=False, logs=False, features=False)
    two = make_run_dir(tmp_path / "s1", seeds=(1,), snapshots=False, logs=False, features=False, baseline=False)
    t_both = build_tables(collect([both]))
    t_merged = build_tables(collect([one, two]))
    for key, cell in t_both.cells.items():
        other = t_merged.cells[key]
        assert (other.mean, other.std, other.ci_low, other.ci_high) == (cell.mean, cell.std, cell.ci_low, cell.ci_high)


def test_missing_pieces_degrade_with_notes(tmp_path: Path) -> None:
    run = make_run_dir(tmp_path / "run", seeds=(0,), snapshots=False, features=False, logs=False, baseline=False)
    (run / "eval" / "prada-seed0" / "svamp" / "predictions.jsonl").unlink()
    index = build_report([run], tmp_path / "report")
    html = index.read_text()
    assert "no features" in html and "no snapshot evaluations" in html and "no training logs" in html
    assert "no predictions.jsonl" in html
    assert not any((tmp_path / "report" / p).exists() for p in PNGS)
    rows = _csv_rows(tmp_path / "report" / "table.csv")
    assert rows[("prada", "svamp")]["accuracy_std"] == ""  # single seed: no std, no crash
    lo, hi = float(rows[("prada", "svamp")]["ci95_low"]), float(rows[("prada", "svamp")]["ci95_high"])
    assert lo <= float(rows[("prada", "svamp")]["accuracy_mean"]) <= hi


def test_no_config_and_missing_dir(tmp_path: Path) -> None:
    run = make_run_dir(tmp_path / "run", seeds=(0,), snapshots=False, logs=False)
    (run / "config.yaml").unlink()
    index = build_report([run], tmp_path / "report")
    assert "no config.yaml" in index.read_text()
    with pytest.raises(RunDirError, match="not found"):
        build_report([tmp_path / "nope"], tmp_path / "r2")


def test_cli_report(run_dir: Path, tmp_path: Path) -> None:
    app = typer.Typer()
    register(app)

    @app.command("noop")
    def _noop() -> None:  # a second command keeps typer from collapsing to a single command
        pass

    res = CliRunner().invoke(app, ["report", str(run_dir), "--out", str(tmp_path / "rep")])
    assert res.exit_code == 0, res.output
    assert "index.html" in res.output and "| method |" in res.output
    assert (tmp_path / "rep" / "index.html").is_file()
    shutil.rmtree(tmp_path / "rep")


def test_metrics_alone_rebuild_the_same_tables(run_dir: Path, tmp_path: Path) -> None:
    """Committed results keep per-question outcomes in metrics.json, not predictions (which quote
    the datasets): the tables must come out byte-identical without any predictions.jsonl."""
    import json

    build_report([run_dir], tmp_path / "from_predictions")
    slim = tmp_path / "slim"
    shutil.copytree(run_dir, slim)
    for predictions in slim.glob("eval/*/*/predictions.jsonl"):
        records = [json.loads(line) for line in predictions.read_text().splitlines()]
        metrics_path = predictions.parent / "metrics.json"
        metrics = json.loads(metrics_path.read_text())
        metrics["per_question"] = {"ids": [r["id"] for r in records],
                                   "correct": [int(r["correct"]) for r in records]}
        metrics_path.write_text(json.dumps(metrics))
        predictions.unlink()
    build_report([slim], tmp_path / "from_metrics")
    for name in ("table.md", "table.csv"):
        assert (tmp_path / "from_metrics" / name).read_bytes() == (tmp_path / "from_predictions" / name).read_bytes()


def test_domain_accuracy_majority_baseline_from_run_config(tmp_path: Path) -> None:
    """The classifier's always-'source' accuracy is source / (source + target) questions per step."""
    from prada.reporting.collect import _source_share

    cfg = tmp_path / "config.yaml"
    cfg.write_text("train:\n  batch_size: 8\nadversarial:\n  target_batch_size: 4\n")
    assert _source_share(cfg) == pytest.approx(8 / 12)
    cfg.write_text("train:\n  batch_size: 8\nadversarial:\n  target_batch_size: null\n")
    assert _source_share(cfg) == pytest.approx(0.5)  # None: as many target questions as source
    assert _source_share(tmp_path / "missing.yaml") is None


def _rewrite_predictions(path: Path, edit) -> None:
    import json

    records = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps(r) + "\n" for r in edit(records)))


def _slim_run(tmp_path: Path, name: str) -> Path:
    return make_run_dir(tmp_path / name, seeds=(0, 1), snapshots=False, features=False, logs=False, baseline=False)


def test_comparison_pairs_by_question_id_not_by_position(tmp_path: Path) -> None:
    """The same evaluations with one model's questions listed in another order give the same tables."""
    from prada.reporting.tables import to_markdown

    aligned, shuffled = _slim_run(tmp_path, "aligned"), _slim_run(tmp_path, "shuffled")
    for task in (SOURCE, *TARGETS):
        for seed in (0, 1):
            _rewrite_predictions(shuffled / "eval" / f"prada-seed{seed}" / task / "predictions.jsonl",
                                 lambda recs: recs[::-1])
    md = [to_markdown(build_tables(collect([run]))) for run in (aligned, shuffled)]
    assert md[0] == md[1]
    assert "| PRADA − FT-CoT (points) |" in md[0]


def test_comparison_refuses_different_questions_with_a_note(tmp_path: Path) -> None:
    """An evaluation on other questions (same count) gets no paired interval: '—' and a note."""
    run = _slim_run(tmp_path, "run")

    def rename_first(recs: list[dict]) -> list[dict]:
        recs[0]["id"] = "svamp/other"
        return recs

    for seed in (0, 1):
        _rewrite_predictions(run / "eval" / f"prada-seed{seed}" / "svamp" / "predictions.jsonl", rename_first)
    data = collect([run])
    tables = build_tables(data)
    assert "svamp" not in tables.comparison["ft_cot"] and "target avg" not in tables.comparison["ft_cot"]
    assert "addsub" in tables.comparison["ft_cot"]
    assert any("no paired interval" in n and "answered different questions" in n and "svamp/other" in n
               for n in data.notes)
    # The unpaired accuracy is still shown, with its own interval.
    cell = tables.cells[("prada", "svamp")]
    assert cell.ci_low <= cell.mean <= cell.ci_high


def test_missing_outcomes_give_no_paired_interval_and_no_made_up_vector(tmp_path: Path) -> None:
    run = _slim_run(tmp_path, "run")
    for seed in (0, 1):
        (run / "eval" / f"prada-seed{seed}" / "addsub" / "predictions.jsonl").unlink()
    data = collect([run])
    assert all(e.outcomes() is None for e in data.evals if e.task == "addsub" and e.model.method == "prada")
    tables = build_tables(data)
    assert "addsub" not in tables.comparison["ft_cot"] and "svamp" in tables.comparison["ft_cot"]
    assert any("no paired interval" in n and "no per-question outcomes" in n for n in data.notes)
    cell = tables.cells[("prada", "addsub")]
    assert cell.ci_low <= cell.mean <= cell.ci_high
