"""A refused or failed invocation leaves the run folder as it was; a damaged file in a run folder is
one error naming it and what to do; ``prada report`` refuses what it cannot read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prada.cli import main
from prada.config import dump_yaml, load_config
from prada.errors import DataError, RunDirError, TeacherError
from prada.paths import RunPaths
from prada.runner import check_run_dir, run_experiment

QUICKSTART = Path(__file__).resolve().parents[1] / "configs" / "quickstart.yaml"


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as e:
        main(list(argv))
    return int(e.value.code or 0), capsys.readouterr().err


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_typo_is_refused_before_anything_is_written_and_locks_nothing(capsys, tmp_path):
    out = tmp_path / "run"
    code, err = run_cli(capsys, "run", str(QUICKSTART), f"output_dir={out}", "data.source=synth_coin_flp")
    assert code == 2 and "data.source: unknown task 'synth_coin_flp'" in one_error_line(err)
    assert not out.exists()


def test_a_missing_dataset_is_refused_before_config_yaml_is_written(tmp_path):
    cfg = load_config(None, [f"output_dir={tmp_path / 'run'}", "methods=[ft_cot]", "data.source=mine",
                             f"data.custom_tasks=[{{name: mine, path: '{tmp_path / 'nope.jsonl'}'}}]"])
    with pytest.raises(DataError, match="nope.jsonl: custom dataset file not found"):
        run_experiment(cfg)
    assert not (tmp_path / "run").exists()


def test_a_config_yaml_without_outputs_does_not_lock_the_folder(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    before = load_config(None, [f"output_dir={out}", "methods=[ft_cot]", "teacher.backend=gold"])
    (out / "config.yaml").write_text(dump_yaml(before))
    after = load_config(None, [f"output_dir={out}", "methods=[ft_cot]", "teacher.backend=replay"])
    check_run_dir(RunPaths(out), after)  # nothing depends on the old config: no refusal
    (out / "teacher").mkdir()
    (out / "teacher" / "cache.jsonl").write_text("")
    with pytest.raises(RunDirError, match="made with a different config"):
        check_run_dir(RunPaths(out), after)


def test_an_empty_gold_rationale_is_refused_once_not_retried_forever(tmp_path):
    data = tmp_path / "mine.jsonl"
    records = [{"question": f"{i} + 1?", "answer": i + 1, "rationale": "" if i == 3 else f"{i} + 1 = {i + 1}."}
               for i in range(8)]
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "run"
    task = f"{{name: mine, path: '{data}', answer_type: number, test_fraction: 0.25}}"
    cfg = load_config(None, [f"output_dir={out}", "methods=[ft_cot]", "data.source=mine", "teacher.backend=gold",
                             f"data.custom_tasks=[{task}]"])
    with pytest.raises(TeacherError, match=r"questions have no gold rationale \(mine/3\)"):
        run_experiment(cfg, report=False)
    # No teacher output, nothing to lock: the config and the record of the failure for `prada status`.
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml", "invocation.json"]
    check_run_dir(RunPaths(out), load_config(None, [f"output_dir={out}", "methods=[ft_cot]"]))


def finished_overrides(out: Path) -> list[str]:
    return [f"output_dir={out}", "methods=[ft_cot]", "data.targets=[]", "seeds=[0]"]


@pytest.fixture
def finished_run(tmp_path: Path) -> Path:
    """A run folder as prada leaves it (files only: config, teacher summary, one evaluation)."""
    out = tmp_path / "run"
    cfg = load_config(QUICKSTART, finished_overrides(out))
    (out / "teacher").mkdir(parents=True)
    (out / "config.yaml").write_text(dump_yaml(cfg))
    (out / "teacher" / "summary.json").write_text(json.dumps({"complete": True}))
    metrics = out / "eval" / "ft_cot-seed0" / cfg.data.source / "metrics.json"
    metrics.parent.mkdir(parents=True)
    metrics.write_text(json.dumps({"task": cfg.data.source, "n": 4, "correct": 3, "accuracy": 0.75}))
    return out


@pytest.mark.parametrize(
    ("file", "content", "fragment"),
    [
        ("config.yaml", b"name: x\nmethods: [ft_cot\n", "config.yaml:3: malformed YAML"),
        ("config.yaml", b"name: caf\xe9\n", "config.yaml: not UTF-8 text"),
        ("teacher/summary.json", b'{"complete": tr', "summary.json:1:14: malformed JSON"),
        ("eval/ft_cot-seed0/SOURCE/metrics.json", b'{"n": 4, "corr', "metrics.json:1:10: malformed JSON"),
        ("eval/ft_cot-seed0/SOURCE/metrics.json", b"[1]", "expected a JSON object, got list"),
        ("eval/ft_cot-seed0/SOURCE/metrics.json", b'{"task": "x", "n": 4}', "not the metrics of an evaluation"),
    ],
)
def test_a_damaged_run_folder_file_is_one_line_naming_it_and_nothing_changes(capsys, finished_run, file, content,
                                                                             fragment):
    source = load_config(QUICKSTART).data.source
    file = file.replace("SOURCE", source)
    (finished_run / file).write_bytes(content)
    before = snapshot(finished_run)
    code, err = run_cli(capsys, "run", str(QUICKSTART), *finished_overrides(finished_run))
    line = one_error_line(err)
    assert code == 2 and str(finished_run / file) in line and fragment in line
    if file.endswith("metrics.json"):
        assert "delete it and run the same command again to re-evaluate that model" in line
    assert snapshot(finished_run) == before


def test_evaluate_out_pointing_at_a_file_fails_before_loading_anything(capsys, tmp_path, tiny_model_dir):
    target = tmp_path / "results.txt"
    target.write_text("mine")
    code, err = run_cli(capsys, "evaluate", "--model", str(tiny_model_dir), "--task", "synth_coin_flip",
                        "--out", str(target))
    assert code == 2 and f"{target}: is a file, but prada needs a folder there" in one_error_line(err)
    assert target.read_text() == "mine"


def test_report_refuses_an_empty_folder(capsys, tmp_path):
    code, err = run_cli(capsys, "report", str(tmp_path))
    assert code == 2 and "no evaluations to report" in one_error_line(err)
    assert not any(tmp_path.iterdir())


def test_report_names_each_model_it_could_not_read(capsys, finished_run):
    source = load_config(QUICKSTART).data.source
    other = finished_run / "eval" / "prada-seed0" / source / "metrics.json"
    other.parent.mkdir(parents=True)
    other.write_text('{"n": 4, "correct": 3, "accur')
    features = finished_run / "features" / "ft_cot-seed0.npz"
    features.parent.mkdir()
    features.write_bytes(b"PK\x03\x04 truncated")
    code, err = run_cli(capsys, "report", str(finished_run))
    line = one_error_line(err)
    assert code == 2 and f"could not read 2 model file(s): prada-seed0 on {source} (" in line
    assert "ft_cot-seed0 (features:" in line and "nothing was written" in line
    assert not (finished_run / "report").exists()
