"""``prada train``: help with runnable examples, a tiny run, user errors as one line + exit 2."""

from __future__ import annotations

import pytest
import typer
import yaml
from training_helpers import SOURCE, TARGET
from typer.testing import CliRunner

from prada.io import read_json
from prada.training.commands import register


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.command("noop", hidden=True)
    def _noop() -> None:  # a second command keeps `train` a sub-command
        pass

    return app


def test_help_ends_with_runnable_examples():
    result = CliRunner().invoke(_app(), ["train", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    lines = [line.strip() for line in result.output.splitlines() if line.strip()]
    assert "Examples:" in result.output
    assert any(line.startswith("prada train --config") for line in lines)
    assert "accelerate launch" in lines[-2] or "accelerate launch" in lines[-1]


@pytest.fixture
def config_file(tiny_model_dir, tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump({
        "output_dir": str(tmp_path / "run"),
        "student": {"model": str(tiny_model_dir), "max_length": 96},
        "data": {"source": SOURCE, "targets": [TARGET], "max_target_examples": 8},
        "train": {"backbone": "full", "batch_size": 2, "max_steps": 2},
    }))
    return path


def test_cli_trains_into_the_run_directory_layout(config_file, corpus, tmp_path):
    from prada.cli import main

    main(["train", "--config", str(config_file), "--method", "ft_cot", "--corpus", str(corpus), "train.max_steps=1"])
    summary = read_json(tmp_path / "run/train/ft_cot-seed0/summary.json")
    assert summary["steps"] == 1  # the dotted override won


def test_cli_user_error_is_one_line_and_exit_2(config_file, corpus, capsys):
    from prada.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--config", str(config_file), "--method", "fancy", "--corpus", str(corpus)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "unknown method 'fancy'" in err and "Traceback" not in err
