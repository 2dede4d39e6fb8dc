"""``prada data`` end to end through ``prada.cli.main``: output, and one-line errors (exit 2,
no traceback) for bad input."""

from __future__ import annotations

import json
import shutil

import pytest

from prada.cli import main
from prada.data.commands import PUBLISHED_ZERO_SHOT_COT


def run(capsys, *argv):
    with pytest.raises(SystemExit) as e:
        main(list(argv))
        raise SystemExit(0)
    out = capsys.readouterr()
    return e.value.code or 0, out.out, out.err


def assert_user_error(code, err, *needles):
    assert code == 2
    assert "Traceback" not in err and err.startswith("error:")
    flat = " ".join(err.split())
    for needle in needles:
        assert needle in flat, flat


def test_list_without_data_dir_shows_synthetic_tasks(capsys, monkeypatch):
    monkeypatch.delenv("PRADA_DATA_DIR", raising=False)
    code, out, _ = run(capsys, "data", "list")
    assert code == 0 and "synth_last_letters_long" in out and "multiarith" in out


def test_show_synthetic(capsys):
    code, out, _ = run(capsys, "data", "show", "synth_last_letters", "-n", "2", "--split", "train")
    assert code == 0 and out.count("Take the last letters") == 2 and "Concatenating them" in out


def test_every_command_help_ends_with_an_example(capsys):
    for cmd in ("list", "show", "score-teacher"):
        code, out, _ = run(capsys, "data", cmd, "--help")
        assert code == 0 and "Example: prada data" in out


def test_unknown_task(capsys):
    code, _, err = run(capsys, "data", "show", "mulitarith")
    assert_user_error(code, err, "unknown task 'mulitarith'", "did you mean 'multiarith'", "valid tasks:")


def test_no_data_dir(capsys, monkeypatch):
    monkeypatch.delenv("PRADA_DATA_DIR", raising=False)
    code, _, err = run(capsys, "data", "score-teacher")
    assert_user_error(code, err, "--data-dir", "PRADA_DATA_DIR")


def test_data_dir_without_files_names_the_missing_one(capsys, tmp_path):
    code, _, err = run(capsys, "data", "show", "gsm8k", "--data-dir", str(tmp_path))
    assert_user_error(code, err, "raw/gsm8k/train.jsonl: file not found")


def test_malformed_raw_jsonl_names_file_and_line(capsys, tmp_path):
    folder = tmp_path / "raw" / "gsm8k"
    folder.mkdir(parents=True)
    good = json.dumps({"question": "q?", "answer": "x\n#### 1"})
    (folder / "train.jsonl").write_text(f"{good}\n{good}\n{{oops\n")
    (folder / "test.jsonl").write_text(f"{good}\n")
    code, _, err = run(capsys, "data", "show", "gsm8k", "--data-dir", str(tmp_path))
    assert_user_error(code, err, "train.jsonl:3: malformed JSON")


def test_malformed_raw_json_names_file_and_line(capsys, tmp_path):
    folder = tmp_path / "raw" / "multiarith"
    folder.mkdir(parents=True)
    (folder / "MultiArith.json").write_text('[\n  {"sQuestion": "q",\n  "lSolutions": [1]\n')
    code, _, err = run(capsys, "data", "show", "multiarith", "--data-dir", str(tmp_path))
    assert_user_error(code, err, "MultiArith.json:4:", "malformed JSON")


@pytest.mark.real_data
def test_list_real_sizes(capsys, data_dir):
    code, out, _ = run(capsys, "data", "list", "--data-dir", str(data_dir))
    assert code == 0
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.startswith("│")}
    for name, (train, test) in {"multiarith": (420, 180), "gsm8k": (7473, 1319), "svamp": (700, 300),
                                "commonsense_qa": (9741, 1221), "strategy_qa": (1603, 687)}.items():
        cells = [c.strip() for c in rows[name].split("│")]
        assert cells[-3:-1] == [str(train), str(test)], rows[name]


@pytest.mark.real_data
def test_score_teacher_json_parity(capsys, data_dir):
    code, out, _ = run(capsys, "data", "score-teacher", "--data-dir", str(data_dir), "--json")
    assert code == 0
    rows = {r["task"]: r for r in json.loads(out)["datasets"]}
    assert set(rows) == set(PUBLISHED_ZERO_SHOT_COT)
    for name, published in PUBLISHED_ZERO_SHOT_COT.items():
        assert abs(rows[name]["accuracy_strict"] - published) <= 1.0, name
        assert rows[name]["published"] == published


@pytest.mark.real_data
def test_recorded_teacher_missing_file(capsys, data_dir, tmp_path):
    # a copy of the data dir whose teacher folder lacks one dataset
    root = tmp_path / "d"
    shutil.copytree(data_dir / "raw" / "coin_flip", root / "raw" / "coin_flip")
    (root / "teacher" / "text-davinci-002" / "zero_shot_cot").mkdir(parents=True)
    code, _, err = run(capsys, "data", "score-teacher", "--data-dir", str(root))
    assert_user_error(code, err, "singleeq.jsonl: no recorded completions for task 'singleeq'")


def test_custom_task_from_config(capsys, tmp_path):
    data = tmp_path / "mine.jsonl"
    data.write_text("".join(json.dumps({"question": f"{i} + 1?", "answer": i + 1}) + "\n" for i in range(10)))
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"data:\n  custom_tasks:\n    - name: mine\n      path: {data}\n      answer_type: number\n")
    code, out, _ = run(capsys, "data", "show", "mine", "--config", str(cfg), "-n", "1")
    assert code == 0 and "mine/" in out
    code, out, _ = run(capsys, "data", "list", "--config", str(cfg))
    assert code == 0 and "mine" in out and "custom" in out
    data.write_text('{"question": "1 + 1?", "answer": 2}\n{"answer": 3}\n')
    code, _, err = run(capsys, "data", "show", "mine", "--config", str(cfg))
    assert_user_error(code, err, "mine.jsonl:2: missing field 'question'")
