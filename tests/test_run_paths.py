"""The run directory's typed contract (``RunPaths``), the library/CLI split of the runner and the
sweep, and a CLI that never hides a missing module."""

from __future__ import annotations

import ast
import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest

from prada.paths import ModelName, RunPaths, model_name, parse_model_name


@pytest.mark.parametrize("method, seed, step", [("prada", 0, None), ("ft_cot", 12, 40), ("my-method", 3, 0)])
def test_model_names_round_trip(method, seed, step):
    name = model_name(method, seed, step)
    assert parse_model_name(name) == ModelName(method, seed, step)
    assert str(parse_model_name(name)) == name


def test_a_name_without_seed_is_a_model_of_its_own():
    assert parse_model_name("zero_shot_cot") == ModelName("zero_shot_cot")
    assert model_name("zero_shot_cot") == "zero_shot_cot"


def test_run_paths_own_every_sub_path_and_the_done_checks(tmp_path):
    paths = RunPaths(tmp_path)
    assert paths.train_dir("prada", 1) == tmp_path / "train" / "prada-seed1"
    assert paths.eval_metrics("prada-seed1", "svamp") == tmp_path / "eval" / "prada-seed1" / "svamp" / "metrics.json"
    assert not paths.train_done("prada", 1) and not paths.eval_done("prada-seed1", "svamp")
    assert not paths.features_done("prada-seed1") and not paths.teacher_done()
    paths.final_dir("prada", 1).mkdir(parents=True)
    for step in (10, 2):
        (paths.snapshots_dir("prada", 1) / f"step-{step}").mkdir(parents=True)
    (paths.snapshots_dir("prada", 1) / "step-x").mkdir()
    paths.eval_dir("prada-seed1", "svamp").mkdir(parents=True)
    paths.eval_metrics("prada-seed1", "svamp").write_text("{}")
    assert paths.train_done("prada", 1) and paths.eval_done("prada-seed1", "svamp")
    assert [s for s, _ in paths.snapshots("prada", 1)] == [2, 10]
    paths.teacher_dir.mkdir()
    paths.teacher_corpus.write_text("")
    paths.teacher_summary.write_text(json.dumps({"complete": False}))
    assert not paths.teacher_done()  # failed samples: the teacher stage runs again
    paths.teacher_summary.write_text(json.dumps({"complete": True}))
    assert paths.teacher_done()


@pytest.mark.parametrize("module_name", ["prada.runner", "prada.sweep"])
def test_the_runner_and_the_sweep_are_libraries_without_cli_code(module_name):
    import importlib

    tree = ast.parse(inspect.getsource(importlib.import_module(module_name)))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not imported & {"typer", "rich", "click"}


def test_a_missing_command_module_fails_loudly(tmp_path):
    """A packaging bug (a module that cannot be imported) must not just hide a command."""
    code = ("import sys; sys.modules['prada.commands'] = None\n"
            "from prada.cli import main\n"
            "main(['--help'])\n")
    src = Path(__file__).resolve().parents[1] / "src"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"}, timeout=300)
    assert proc.returncode != 0
    assert "ModuleNotFoundError" in proc.stderr and "prada.commands" in proc.stderr
