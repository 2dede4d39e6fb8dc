from __future__ import annotations

import json

import pytest

from prada.cli import main


def test_prada_evaluate_cli(tiny_model_dir, tmp_path, capsys) -> None:
    out = tmp_path / "ev"
    main(["evaluate", "--model", str(tiny_model_dir), "--task", "synth_last_letters", "--style", "student",
          "--max-examples", "3", "--max-new-tokens", "6", "--batch-size", "2", "--device", "cpu", "--out", str(out)])
    printed = capsys.readouterr().out
    assert "accuracy" in printed and "synth_last_letters" in printed
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 3
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == 3 and metrics["device"] == "cpu"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "runs/nowhere/train/prada-seed0/final", "--task", "synth_last_letters"], "not found"),
        (["--model", "{model}", "--task", "multiarith", "--data-dir", "{tmp}/empty"], "multiarith"),
        (["--model", "{model}", "--task", "no_such_task"], "unknown task"),
        (["--model", "{model}", "--task", "synth_last_letters", "--style", "bogus"], "--style"),
        (["--model", "{model}", "--task", "synth_last_letters", "--device", "gpu0"], "eval.device: 'gpu0' is not one of auto, cpu, cuda, cuda:N"),
    ],
)
def test_prada_evaluate_cli_errors(tiny_model_dir, tmp_path, capsys, args, message) -> None:
    (tmp_path / "empty").mkdir()
    args = [a.format(model=tiny_model_dir, tmp=tmp_path) for a in args]
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", *args, "--out", str(tmp_path / "o")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "error" in err and message in err


def test_evaluate_with_an_eval_only_config(tiny_model_dir, tmp_path, capsys) -> None:
    """A config that only declares a custom task and eval settings is not held to training's rules
    (the default methods include prada, which needs a target task), and its settings are used."""
    from prada.config import load_config
    from prada.errors import ConfigError

    data = tmp_path / "mine.jsonl"
    data.write_text("".join(json.dumps({"question": f"What is {i} plus 1?", "answer": str(i + 1)}) + "\n"
                            for i in range(20)))
    cfg = tmp_path / "eval.yaml"
    cfg.write_text(f"data:\n  custom_tasks:\n    - name: mine\n      path: {data}\n      answer_type: number\n"
                   "      test_fraction: 0.5\n"
                   "eval:\n  max_examples: 4\n  max_new_tokens: 5\n  batch_size: 2\n  device: cpu\n")
    with pytest.raises(ConfigError, match="need at least one target task"):
        load_config(cfg)  # a whole run would need one

    out = tmp_path / "ev"
    main(["evaluate", "--config", str(cfg), "--model", str(tiny_model_dir), "--task", "mine", "--style", "student",
          "--out", str(out)])
    assert "mine (test, student)" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["n"], metrics["max_new_tokens"], metrics["batch_size"], metrics["split"]) == (4, 5, 2, "test")


def test_evaluate_config_still_checks_what_evaluation_reads(tiny_model_dir, tmp_path, capsys) -> None:
    cfg = tmp_path / "eval.yaml"
    cfg.write_text("data:\n  val_fraction: 1.5\neval:\n  split: val\n")
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", "--config", str(cfg), "--model", str(tiny_model_dir), "--task", "synth_last_letters",
              "--out", str(tmp_path / "o")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "data.val_fraction" in err and "target task" not in err


@pytest.mark.parametrize("flag", ["--progress", "--no-progress"])
def test_evaluate_shows_progress_and_keeps_stdout_for_the_result(tiny_model_dir, tmp_path, capsys, monkeypatch,
                                                                 flag) -> None:
    """`--progress` forces a live bar (even into a capture), `--no-progress` plain lines (here on
    every batch); either way one summary line on stderr, and the result line alone on stdout."""
    monkeypatch.setenv("PRADA_PROGRESS_INTERVAL_S", "0")
    main(["evaluate", "--model", str(tiny_model_dir), "--task", "synth_last_letters", "--style", "student",
          "--max-examples", "3", "--max-new-tokens", "4", "--batch-size", "1", "--device", "cpu",
          "--out", str(tmp_path / "ev"), flag])
    printed = capsys.readouterr()
    if flag == "--progress":
        assert "\x1b[" in printed.err
    else:
        assert "\x1b[" not in printed.err and "\r" not in printed.err
        assert "on synth_last_letters: 1/3 questions (33%), " in printed.err and "ETA" in printed.err
    summary = [line for line in printed.err.splitlines() if "3/3 questions in " in line]
    assert len(summary) == 1 and "tokens/s" in summary[0] and "accuracy" in summary[0]
    assert printed.out.startswith("synth_last_letters (test, student): accuracy") and "questions" not in printed.out
