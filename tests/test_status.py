"""``prada status``: a run directory in each state, read from its files only.

The finished and the killed-mid-training states are checked on real runs in ``test_runner.py``
(the quickstart end to end, and a SIGKILL'd ``prada run`` subprocess); here: a new run directory,
a training in progress, a run on another host, a real failure, and the read-only guarantee.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from prada.config import dump_yaml, load_config
from prada.errors import RunDirError, TrainingError
from prada.invocation import Invocation, process_alive, process_start
from prada.paths import RunPaths
from prada.runner import run_experiment
from prada.status import inspect_run
from test_runner import QUICKSTART, run_cli, shrunk_overrides


def new_run_dir(tiny_model_dir: Path, root: Path, **extra: object) -> RunPaths:
    """A run directory as `prada run` leaves it before its first stage: config.yaml only."""
    cfg = load_config(QUICKSTART, shrunk_overrides(tiny_model_dir, root, **extra))
    root.mkdir(parents=True)
    (root / "config.yaml").write_text(dump_yaml(cfg))
    return RunPaths(root)


def printed_words(capsys) -> str:
    """stdout with its line wrapping undone (rich wraps at the captured console's width)."""
    return " ".join(capsys.readouterr().out.split())


def by_label(status) -> dict[str, object]:
    return {item.label: item for item in status.items}


def test_a_new_run_directory_is_all_pending_and_says_what_is_left(tiny_model_dir, tmp_path, capsys):
    paths = new_run_dir(tiny_model_dir, tmp_path / "run")
    status = inspect_run(paths.root)
    assert status.name == "quickstart" and status.invocation is None
    assert {item.state for item in status.items} == {"pending"}
    labels = list(by_label(status))
    assert labels[0] == "teacher" and labels[-1] == "report"
    assert "train prada-seed0" in labels and "eval prada-seed0 on synth_coin_flip_long" in labels
    # Snapshots at step 2 of 4 (save_every=2) are evaluated on the target only.
    assert "eval prada-seed0@step-2 on synth_coin_flip_long" in labels
    assert "eval prada-seed0@step-2 on synth_coin_flip" not in labels
    assert status.left_summary() == "teacher, train 2 (8 steps), eval 6, features 2, report"

    assert run_cli(["status", str(paths.root)]) == 0
    printed = printed_words(capsys)
    assert "quickstart" in printed and "no `prada run` recorded here" in printed
    assert "left to run: teacher, train 2 (8 steps), eval 6, features 2, report" in printed


def test_training_in_progress_is_running_at_step_k_of_n(tiny_model_dir, tmp_path, capsys):
    paths = new_run_dir(tiny_model_dir, tmp_path / "run", **{"train.max_steps": 40})
    invocation = Invocation(paths.invocation)  # this test process plays the live `prada run`
    invocation.start()
    invocation.at("train", "ft_cot-seed0")
    log = paths.train_log("ft_cot", 0)
    log.parent.mkdir(parents=True)
    log.write_text("".join(json.dumps({"step": s, "elapsed_s": 2.0 * s}) + "\n" for s in range(1, 11)))

    item = by_label(inspect_run(paths.root))["train ft_cot-seed0"]
    assert (item.state, item.step, item.max_steps) == ("running", 10, 40)
    assert item.detail == "step 10 of 40, ~1m00s left"  # 2 s per step, 30 steps to go

    assert run_cli(["status", str(paths.root), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)  # nothing but the JSON on stdout
    assert report["invocation"]["alive"] is True and report["invocation"]["stage"]["model"] == "ft_cot-seed0"
    train = next(i for i in report["items"] if i["label"] == "train ft_cot-seed0")
    assert train["state"] == "running" and train["step"] == 10
    assert report["left_summary"].startswith("teacher, train 2 (70 steps)")

    assert run_cli(["status", str(paths.root)]) == 0
    printed = printed_words(capsys)
    assert "running for" in printed and "at train ft_cot-seed0" in printed
    assert "running 10/40, ~1m00s left" in printed  # the table's cell
    assert "running train ft_cot-seed0: step 10 of 40, ~1m00s left" in printed


def test_a_run_on_another_host_is_not_declared_dead(tiny_model_dir, tmp_path):
    paths = new_run_dir(tiny_model_dir, tmp_path / "run")
    invocation = Invocation(paths.invocation)
    invocation.start()
    invocation.at("eval", "prada-seed0", "synth_coin_flip")
    record = json.loads(paths.invocation.read_text())
    paths.invocation.write_text(json.dumps({**record, "host": "another-node", "pid": 1}))
    item = by_label(inspect_run(paths.root))["eval prada-seed0 on synth_coin_flip"]
    assert item.state == "running" and "another-node" in item.detail


def test_a_failed_training_shows_its_one_line_reason(tiny_model_dir, tmp_path, monkeypatch, capsys):
    import prada.training

    def failing_train(cfg, method, seed, out_dir, corpus_path, resume=True, progress=None):
        raise TrainingError("non-finite loss at step 3; lower train.lr or check the data")

    monkeypatch.setattr(prada.training, "train", failing_train)
    out = tmp_path / "run"
    cfg = load_config(QUICKSTART, shrunk_overrides(tiny_model_dir, out, **{"methods": "[ft_cot]"}))
    with pytest.raises(TrainingError):
        run_experiment(cfg)

    status = inspect_run(out)
    items = by_label(status)
    assert items["teacher"].state == "done"
    failed = items["train ft_cot-seed0"]
    assert failed.state == "failed"
    assert failed.detail.startswith("TrainingError: non-finite loss at step 3; lower train.lr")
    assert items["eval ft_cot-seed0 on synth_coin_flip"].state == "pending"
    assert status.invocation["state"] == "failed"

    assert run_cli(["status", str(out)]) == 0
    printed = printed_words(capsys)
    assert "failed train ft_cot-seed0: TrainingError: non-finite loss at step 3" in printed


def test_a_training_without_a_run_record_is_judged_by_its_log(tiny_model_dir, tmp_path):
    """`prada train` alone writes no invocation.json: a fresh log means running, a stale one not."""
    paths = new_run_dir(tiny_model_dir, tmp_path / "run", **{"train.max_steps": 40})
    log = paths.train_log("ft_cot", 0)
    log.parent.mkdir(parents=True)
    log.write_text("".join(json.dumps({"step": s, "elapsed_s": 1.0 * s}) + "\n" for s in range(1, 6)))
    item = by_label(inspect_run(paths.root))["train ft_cot-seed0"]
    assert item.state == "running" and item.detail.startswith("step 5 of 40 (log written ")
    an_hour_ago = time.time() - 3600
    os.utime(log, (an_hour_ago, an_hour_ago))
    item = by_label(inspect_run(paths.root))["train ft_cot-seed0"]
    assert item.state == "interrupted" and item.detail == "stopped at step 5 of 40; restarts from step 0"


def test_status_only_reads(tiny_model_dir, tmp_path):
    paths = new_run_dir(tiny_model_dir, tmp_path / "run")
    log = paths.train_log("prada", 0)
    log.parent.mkdir(parents=True)
    log.write_text('{"step": 1}\n{"step": 2}\n{"st')  # a torn tail, as a killed writer leaves it
    an_hour_ago = time.time() - 3600
    os.utime(log, (an_hour_ago, an_hour_ago))
    (paths.checkpoints_dir("prada", 0) / "step-2").mkdir(parents=True)
    paths.invocation.write_text("{not json")
    before = {p: (p.stat().st_mtime_ns, p.read_bytes() if p.is_file() else None) for p in paths.root.rglob("*")}

    item = by_label(inspect_run(paths.root))["train prada-seed0"]
    assert item.state == "interrupted" and item.step == 2
    assert item.detail == "stopped at step 2 of 4; resumes from checkpoint step-2"
    after = {p: (p.stat().st_mtime_ns, p.read_bytes() if p.is_file() else None) for p in paths.root.rglob("*")}
    assert after == before


def test_not_a_run_directory_is_one_clear_error(tmp_path, capsys):
    with pytest.raises(RunDirError, match="no config.yaml"):
        inspect_run(tmp_path)
    (tmp_path / "sweep.yaml").write_text("params: []\n")
    assert run_cli(["status", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not a run directory" in err and "sweep folder" in err and "Traceback" not in err


def test_process_alive_tells_a_live_a_dead_and_a_recycled_pid():
    me = os.getpid()
    assert process_alive(me, None, process_start(me)) is True
    assert process_alive(me, None, "not-my-start-time") is False  # the pid now belongs to another process
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert process_alive(child.pid, None, None) is False
    assert process_alive(me, "another-node", None) is None
