"""End to end: the quickstart pipeline, shrunk onto a tiny random model, through ``prada run``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from prada.cli import main
from prada.config import load_config, to_dict
from prada.errors import DataError, RunDirError
from prada.runner import check_compatible, run_experiment
from prada.status import inspect_run

QUICKSTART = Path(__file__).resolve().parents[1] / "configs" / "quickstart.yaml"


def shrunk_overrides(model_dir: Path, out: Path, **extra: object) -> list[str]:
    values: dict[str, object] = {
        "output_dir": str(out),
        "student.model": str(model_dir),
        "student.max_length": 96,
        "data.max_source_examples": 24,
        "data.max_target_examples": 24,
        "prompt_encoder.num_virtual_tokens": 4,
        "train.lr": 1e-3,
        "train.batch_size": 4,
        "train.max_steps": 4,
        "train.save_every": 2,
        "eval.max_examples": 6,
        "eval.max_new_tokens": 12,
        "report.feature_examples": 12,
    }
    values.update(extra)
    return [f"{k}={v}" for k, v in values.items()]


def run_cli(args: list[str]) -> int:
    try:
        main(args)
    except SystemExit as e:
        return int(e.code or 0)
    return 0


def test_quickstart_pipeline_end_to_end_then_rerun_does_nothing(tiny_model_dir, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    monkeypatch.setenv("PRADA_PROGRESS_INTERVAL_S", "0")  # a plain line on every update
    assert run_cli(["run", str(QUICKSTART), *shrunk_overrides(tiny_model_dir, out)]) == 0

    # Progress: stderr is captured (not a terminal), so plain lines, never carriage-return bars,
    # and one summary line per finished stage; stdout keeps only the run's own output.
    printed = capsys.readouterr()
    assert "\r" not in printed.err and "\x1b[" not in printed.err
    for summary in ("teacher rationale: 24/24 samples in ", "teacher answer: 24/24 samples in ",
                    "train ft_cot-seed0: 4/4 steps in ", "train prada-seed0: 4/4 steps in ",
                    # every task of a model in one decoding stream, one stage
                    "evaluate prada-seed0 on synth_coin_flip, synth_coin_flip_long: 12/12 questions in ",
                    "evaluate prada-seed0@step-2 on synth_coin_flip_long: 6/6 questions in ",
                    "features prada-seed0: 24/24 questions in ", "report: 6/6 parts in "):
        assert sum(line.startswith(summary) for line in printed.err.splitlines()) == 1, summary
    assert "train prada-seed0: 2/4 steps (50%)" in printed.err and "L_d=" in printed.err and "ETA" in printed.err
    assert "tokens/s" in printed.err and "steps/s" not in printed.out

    # `prada status` of the finished run: everything done, with wall times and throughput.
    status = inspect_run(out)
    assert status.invocation["state"] == "finished" and status.left() == []
    trained = next(i for i in status.items if i.label == "train prada-seed0")
    assert trained.wall_s > 0 and trained.throughput > 0 and trained.throughput_unit == "tokens"
    assert len([i for i in status.items if i.stage == "eval"]) == 6

    # The table, the four plots and the HTML page.
    report = out / "report"
    for name in ("table.md", "table.csv", "index.html", "accuracy_vs_steps.png", "tsne.png",
                 "training_curves.png", "pad.png"):
        assert (report / name).stat().st_size > 0, name
    for model in ("ft_cot-seed0", "prada-seed0"):
        for task in ("synth_coin_flip", "synth_coin_flip_long"):
            metrics = json.loads((out / "eval" / model / task / "metrics.json").read_text())
            assert metrics["n"] == 6 and 0.0 <= metrics["accuracy"] <= 1.0
            lines = (out / "eval" / model / task / "predictions.jsonl").read_text().splitlines()
            assert len(lines) == 6
    # Snapshot evaluations feed the accuracy-vs-steps figure.
    assert (out / "eval" / "prada-seed0@step-2" / "synth_coin_flip_long" / "metrics.json").exists()
    table = (report / "table.md").read_text()
    assert "| FT-CoT" in table and "| PRADA" in table

    # Re-running a finished run does no work: no output file is rewritten.
    outputs = [p for p in out.rglob("*") if p.is_file()]
    before = {p: p.stat().st_mtime_ns for p in outputs}
    capsys.readouterr()
    assert run_cli(["run", str(QUICKSTART), *shrunk_overrides(tiny_model_dir, out)]) == 0
    printed = capsys.readouterr().out
    assert "evaluate " not in printed
    # config.yaml is rewritten as is; invocation.json records each invocation (for `prada status`).
    changed = [p for p in outputs if p.name not in ("config.yaml", "invocation.json")
               and p.stat().st_mtime_ns != before[p]]
    assert changed == []

    # A committed results folder keeps metrics and features but no weights: re-running it (e.g. to
    # add a seed) must neither retrain nor overwrite a training log.
    import shutil

    for weights in [*out.glob("train/*/final"), *out.glob("train/*/snapshots"), *out.glob("train/*/checkpoints")]:
        shutil.rmtree(weights)
    kept = [p for p in out.rglob("*") if p.is_file()]
    before = {p: p.stat().st_mtime_ns for p in kept}
    capsys.readouterr()
    assert run_cli(["run", str(QUICKSTART), *shrunk_overrides(tiny_model_dir, out)]) == 0
    printed = capsys.readouterr().out
    assert "weights not kept" in printed and "evaluate " not in printed
    assert not list(out.glob("train/*/final"))
    changed = [p for p in kept if p.name not in ("config.yaml", "invocation.json") and p.stat().st_mtime_ns != before[p]]
    assert changed == []


def test_incompatible_run_dir_is_refused_and_left_untouched(tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    cfg = load_config(QUICKSTART, shrunk_overrides(tiny_model_dir, out, **{"methods": "[ft_cot]"}))
    run_experiment(cfg, report=False)
    saved = (out / "config.yaml").read_text()
    final = out / "train" / "ft_cot-seed0" / "final"
    stamp = max(p.stat().st_mtime_ns for p in final.rglob("*"))

    changed = load_config(QUICKSTART, shrunk_overrides(tiny_model_dir, out, **{"methods": "[ft_cot]",
                                                                               "train.lr": 0.5}))
    with pytest.raises(RunDirError, match=r"train\.lr"):
        run_experiment(changed, report=False)
    assert (out / "config.yaml").read_text() == saved
    assert max(p.stat().st_mtime_ns for p in final.rglob("*")) == stamp


def test_run_dir_accepts_keys_that_do_not_change_outputs(tmp_path):
    """Growing the grid or dropping step snapshots for new runs keeps a run directory usable."""
    base = load_config(QUICKSTART, [f"output_dir={tmp_path}"])
    saved = to_dict(base)
    del saved["eval"]["device"]  # a run directory from before eval.device existed stays usable
    for override in ("methods=[ft]", "seeds=[0,1,2]", "train.eval_checkpoints=false", "eval.batch_size=3",
                     "student.max_question_tokens=300", "eval.device=cpu"):
        check_compatible(saved, load_config(QUICKSTART, [f"output_dir={tmp_path}", override]), tmp_path)
    with pytest.raises(RunDirError, match=r"train\.max_steps"):
        check_compatible(saved, load_config(QUICKSTART, [f"output_dir={tmp_path}", "train.max_steps=7"]), tmp_path)


def test_too_long_evaluated_question_fails_before_training(tiny_model_dir, tmp_path):
    """A question the evaluation would refuse stops the run before any training step is spent."""
    out = tmp_path / "run"
    cfg = load_config(QUICKSTART, shrunk_overrides(tiny_model_dir, out, **{"methods": "[ft_cot]",
                                                                           "student.max_question_tokens": 3}))
    with pytest.raises(DataError, match=r"task '\w+', test split \(evaluated\): example .* more than "
                                        r"student\.max_question_tokens=3"):
        run_experiment(cfg, report=False)
    assert not (out / "train" / "ft_cot-seed0").exists()


def test_bad_config_key_is_one_clear_error(tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("trian:\n  lr: 0.1\n")
    assert run_cli(["run", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'trian'" in err and "did you mean 'train'" in err
    assert "Traceback" not in err


def test_killed_mid_training_resumes(tiny_model_dir, tmp_path, capsys):
    """A real SIGKILL mid-training: `prada status` says where it stopped, `prada run` resumes it."""
    out = tmp_path / "run"
    args = [sys.executable, "-m", "prada.cli", "run", str(QUICKSTART),
            *shrunk_overrides(tiny_model_dir, out, **{"methods": "[prada]", "train.max_steps": 40,
                                                      "train.save_every": 2})]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoints = out / "train" / "prada-seed0" / "checkpoints"
    try:
        deadline = time.monotonic() + 240
        while not any(checkpoints.glob("step-*")) and time.monotonic() < deadline:
            assert proc.poll() is None, "the run ended before it could be interrupted"
            time.sleep(0.05)
        assert any(checkpoints.glob("step-*")), "no checkpoint appeared"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not (out / "train" / "prada-seed0" / "final").exists()

    assert run_cli(["status", str(out), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["invocation"]["state"] == "running" and status["invocation"]["alive"] is False
    train = next(i for i in status["items"] if i["label"] == "train prada-seed0")
    assert train["state"] == "interrupted" and train["max_steps"] == 40 and 2 <= train["step"] < 40
    assert "ended without finishing (killed?)" in train["detail"]
    assert "resumes from checkpoint step-" in train["detail"]
    assert status["left_summary"].startswith(f"train 1 ({40 - train['step']} steps), eval ")
    assert run_cli(["status", str(out)]) == 0
    assert "killed or lost" in capsys.readouterr().out

    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((out / "train" / "prada-seed0" / "summary.json").read_text())
    assert summary["steps"] == 40
    assert summary["resumed_from_step"] and summary["resumed_from_step"] >= 2
    steps = [json.loads(line)["step"] for line in
             (out / "train" / "prada-seed0" / "log.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 41)), "each step is logged exactly once after a resume"
    assert inspect_run(out).left() == []


def test_each_model_is_loaded_once_for_all_its_evaluations_and_features(tiny_model_dir, tmp_path, monkeypatch):
    """Two methods with a step snapshot each, two tasks, features: one load per model and snapshot."""
    from collections import Counter

    from prada.evaluation import evaluate as ev

    loads: Counter[str] = Counter()
    real = ev.load_model_for_eval

    def counting(model_ref, *args, **kwargs):
        loads[str(model_ref)] += 1
        return real(model_ref, *args, **kwargs)

    monkeypatch.setattr(ev, "load_model_for_eval", counting)
    cfg = load_config(QUICKSTART, shrunk_overrides(tiny_model_dir, tmp_path / "run", **{"eval.zero_shot_baseline": "true"}))
    root = run_experiment(cfg, report=False)
    trained = {str(root / "train" / f"{m}-seed0" / "final") for m in ("ft_cot", "prada")}
    snapshots = {str(root / "train" / f"{m}-seed0" / "snapshots" / "step-2") for m in ("ft_cot", "prada")}
    assert set(loads) == trained | snapshots | {str(tiny_model_dir)}
    assert all(n == 1 for n in loads.values()), loads
    for name in ("ft_cot-seed0", "prada-seed0"):  # every output of a model came from that one load
        assert (root / "features" / f"{name}.npz").is_file()
        for task in ("synth_coin_flip", "synth_coin_flip_long"):
            assert json.loads((root / "eval" / name / task / "metrics.json").read_text())["model"] == \
                str(root / "train" / name / "final")
