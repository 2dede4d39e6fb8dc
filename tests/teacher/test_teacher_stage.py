"""run_teacher_stage and `prada teach` with the replay and gold backends, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from teacher_helpers import ArithTask, arith_examples, read_lines
from typer.testing import CliRunner

from prada.config import load_config
from prada.errors import ConfigError, DataError, PradaError, RunDirError, TeacherError
from prada.teacher import run_teacher_stage
from prada.teacher.commands import build_config, flag_overrides

REPO = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The real `prada` command in a subprocess (exit codes, stderr)."""
    return subprocess.run([sys.executable, "-m", "prada.cli", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=120)


def _teach(*args: str):
    """`prada teach ARGS` in-process (fast); PradaErrors come back in ``result.exception``."""
    import typer

    from prada.teacher.commands import register

    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # two commands, so that `teach` is a sub-command
    return CliRunner().invoke(app, ["teach", *args], env={"COLUMNS": "200"})


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def expected_replay_kept(data_dir: Path, name: str = "multiarith") -> int:
    """Train questions whose recorded answer is right, from the raw files alone (not prada.data)."""
    items = json.loads((data_dir / "finetune_cot" / "dataset" / f"{name}.json").read_text())
    split = json.loads((data_dir / "finetune_cot" / "split" / f"{name}__default.json").read_text())
    recorded: dict[str, dict] = {}
    for line in (data_dir / "teacher" / "text-davinci-002" / "zero_shot_cot" / f"{name}.jsonl").read_text().splitlines():
        rec = json.loads(line)
        recorded.setdefault(_norm(rec["question"]), rec)
    correct = 0
    for i in split["train"]:
        rec = recorded[_norm(items[i]["question"])]
        try:
            correct += abs(float(rec["teacher_prediction"]) - float(items[i]["answer"])) < 1e-6
        except (TypeError, ValueError):
            pass
    return correct


@pytest.mark.real_data
def test_prada_teach_replay_multiarith(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "teacher"
    res = _teach("--backend", "replay", "--task", "multiarith", "--data-dir", str(data_dir),
                 "--out", str(out), "--quiet")
    assert res.exit_code == 0, res.output
    assert "yield" in res.output and "kept rationales" in res.output
    corpus = read_lines(out / "corpus.jsonl")
    expected = expected_replay_kept(data_dir)
    assert len(corpus) == expected == 332
    summary = json.loads((out / "summary.json").read_text())
    assert summary["questions"] == len(json.loads((data_dir / "finetune_cot/split/multiarith__default.json").read_text())["train"])
    assert summary["kept"] == expected and summary["complete"]
    assert summary["yield_pct"] == pytest.approx(100 * expected / summary["questions"], abs=0.01)
    rec = corpus[0]
    assert set(rec) >= {"example_id", "dataset", "question", "answer", "rationale", "prediction", "correct",
                        "sample_index", "teacher", "sampling", "prompts", "raw"}
    assert rec["teacher"]["backend"] == "replay" and rec["teacher"]["model"] == "text-davinci-002"
    assert rec["raw"]["answer_completion"].startswith("Therefore, the answer (arabic numerals) is")
    # the recorded texts are the raw completions, untouched
    recorded = {_norm(json.loads(line)["question"]): json.loads(line) for line in
                (data_dir / "teacher/text-davinci-002/zero_shot_cot/multiarith.jsonl").read_text().splitlines()}
    for r in corpus[:20]:
        src = recorded[_norm(r["question"])]
        assert r["raw"]["rationale_completion"] == src["rationale"]
        assert r["raw"]["answer_completion"] == src["answer_completion"]
    # a second run is served from the cache and writes the same bytes
    before = (out / "corpus.jsonl").read_bytes()
    cfg = load_config(None, ["methods=[ft_cot]", "teacher.backend=replay", f"data.data_dir={data_dir}"])
    again = run_teacher_stage(cfg, out)
    assert again["this_run"]["requests"] == 0 and (out / "corpus.jsonl").read_bytes() == before


@pytest.mark.real_data
def test_replay_choice_task_and_subset(data_dir: Path, tmp_path: Path) -> None:
    cfg = load_config(None, ["methods=[ft_cot]", "teacher.backend=replay", f"data.data_dir={data_dir}",
                             "data.source=date_understanding", "data.max_source_examples=60"])
    s = run_teacher_stage(cfg, tmp_path)
    assert s["questions"] == 60 and s["complete"] and 0 < s["kept"] <= 60
    for r in read_lines(tmp_path / "corpus.jsonl"):
        assert r["prediction"] == r["answer"]


@pytest.mark.real_data
def test_replay_refuses_several_samples(data_dir: Path, tmp_path: Path) -> None:
    cfg = load_config(None, ["methods=[ft_cot]", "teacher.backend=replay", f"data.data_dir={data_dir}", "teacher.samples=4"])
    with pytest.raises(TeacherError, match="teacher.samples=1"):
        run_teacher_stage(cfg, tmp_path)
    assert not (tmp_path / "cache.jsonl").exists()


@pytest.mark.real_data
def test_few_shot_prompt_with_replay_dir(data_dir: Path, tmp_path: Path) -> None:
    # few-shot prompts from the real file; the recorded zero-shot texts stand in as completions
    cfg = load_config(None, ["methods=[ft_cot]", "teacher.backend=replay", f"data.data_dir={data_dir}",
                             "teacher.prompt=few_shot_cot", "data.max_source_examples=20",
                             f"teacher.replay_dir={data_dir / 'teacher/text-davinci-002/zero_shot_cot'}"])
    s = run_teacher_stage(cfg, tmp_path)
    assert s["complete"] and s["kept"] > 0
    rec = read_lines(tmp_path / "corpus.jsonl")[0]
    assert rec["prompts"]["rationale"].startswith("Q: There are 15 trees in the grove.")
    assert rec["prompts"]["rationale"].endswith(f"Q: {rec['question']}\nA:")


def test_gold_backend(tmp_path: Path, arith_task: ArithTask) -> None:
    cfg = load_config(None, ["methods=[ft_cot]", "teacher.backend=gold"])
    s = run_teacher_stage(cfg, tmp_path, task=arith_task)
    corpus = read_lines(tmp_path / "corpus.jsonl")
    assert s["kept"] == len(arith_task.examples) == len(corpus) and s["yield_pct"] == 100.0
    assert [r["rationale"] for r in corpus] == [ex.rationale for ex in arith_task.examples]
    assert all(r["prediction"] == r["answer"] and r["teacher"]["backend"] == "gold" for r in corpus)


def test_gold_backend_refuses_questions_without_rationales_before_writing(tmp_path: Path) -> None:
    from dataclasses import replace

    # An empty rationale could never be filled in by a re-run: refused up front, not retried forever.
    examples = arith_examples(4)
    task = ArithTask([replace(ex, rationale=None if i % 2 else ex.rationale) for i, ex in enumerate(examples)])
    with pytest.raises(TeacherError) as e:
        run_teacher_stage(load_config(None, ["methods=[ft_cot]", "teacher.backend=gold"]), tmp_path / "t", task=task)
    assert "2 of 4 questions have no gold rationale (arith/1, arith/3)" in str(e.value)
    assert not (tmp_path / "t").exists()


def test_synthetic_task_through_the_registry(tmp_path: Path) -> None:
    cfg = load_config(None, ["methods=[ft_cot]", "teacher.backend=gold", "data.source=synth_last_letters",
                             "data.max_source_examples=25"])
    s = run_teacher_stage(cfg, tmp_path)
    assert s["questions"] == 25 and s["kept"] == 25


# -- bad input -------------------------------------------------------------------------------------


def test_task_without_train_split(tmp_path: Path, arith_task: ArithTask) -> None:
    arith_task.split_names = ("test",)
    with pytest.raises(TeacherError, match="no 'train' split"):
        run_teacher_stage(load_config(None, ["methods=[ft_cot]", "teacher.backend=gold"]), tmp_path, task=arith_task)
    assert arith_task.loads == [] and not (tmp_path / "cache.jsonl").exists()


def test_unwritable_output_path(tmp_path: Path, arith_task: ArithTask) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(RunDirError, match="cannot write the teacher outputs"):
        run_teacher_stage(load_config(None, ["methods=[ft_cot]", "teacher.backend=gold"]), blocker / "teacher", task=arith_task)
    assert blocker.read_text() == "x"


def test_bad_cache_is_refused_not_overwritten(tmp_path: Path, arith_task: ArithTask) -> None:
    cfg = load_config(None, ["methods=[ft_cot]", "teacher.backend=gold"])
    run_teacher_stage(cfg, tmp_path, task=arith_task)
    cache = tmp_path / "cache.jsonl"
    lines = cache.read_text().splitlines()
    lines[1] = lines[1][:40]  # corrupt a middle line: real damage, not a torn tail
    broken = "\n".join(lines) + "\n"
    cache.write_text(broken)
    with pytest.raises(DataError, match="cache.jsonl:2"):
        run_teacher_stage(cfg, tmp_path, task=arith_task)
    assert cache.read_text() == broken


def test_unknown_backend_and_task() -> None:
    with pytest.raises(ConfigError, match="teacher.backend"):
        build_config(None, [], flag_overrides(backend="gpt"))
    from prada.teacher.backends import get_backend_factory

    with pytest.raises(TeacherError, match="valid: gold, hf, openai, replay, vllm"):
        get_backend_factory("gpt")


def test_vllm_absent_is_a_clear_error(tmp_path: Path, arith_task: ArithTask) -> None:
    pytest.importorskip("torch")
    try:
        import vllm  # noqa: F401
        pytest.skip("vllm is installed")
    except ImportError:
        pass
    cfg = load_config(None, ["methods=[ft_cot]", "teacher.backend=vllm", "teacher.model=x"])
    with pytest.raises(TeacherError, match="vllm"):
        run_teacher_stage(cfg, tmp_path, task=arith_task)
    assert not (tmp_path / "cache.jsonl").exists()


def test_hf_unknown_model(tmp_path: Path, arith_task: ArithTask) -> None:
    cfg = load_config(None, ["methods=[ft_cot]", "teacher.backend=hf", f"teacher.model={tmp_path / 'nope'}"])
    with pytest.raises(TeacherError, match="teacher.model"):
        run_teacher_stage(cfg, tmp_path / "out", task=arith_task)


def test_cli_errors_are_one_line_exit_2(tmp_path: Path) -> None:
    res = _cli("teach", "--backend", "gpt", "--out", str(tmp_path))
    assert res.returncode == 2 and "teacher.backend" in res.stderr and "Traceback" not in res.stderr


def test_cli_bad_input(tmp_path: Path) -> None:
    res = _teach("--backend", "gold", "--task", "no_such_task", "--out", str(tmp_path))
    # A task name is checked when the config is built, before anything is written.
    assert isinstance(res.exception, ConfigError) and "data.source: unknown task 'no_such_task'" in str(res.exception)
    assert not any(tmp_path.iterdir())
    env_key = "PRADA_TEST_ABSENT_KEY"
    res = _teach("--backend", "openai", "--model", "m", "--task", "synth_last_letters",
                 "--out", str(tmp_path / "o"), f"teacher.api_key_env={env_key}")
    assert isinstance(res.exception, TeacherError) and env_key in str(res.exception)
    assert not (tmp_path / "o" / "cache.jsonl").exists()


def test_cli_help_ends_with_examples() -> None:
    res = _teach("--help")
    assert res.exit_code == 0
    assert "Examples:" in res.output and "prada teach --backend replay" in res.output


def test_cli_flags_map_to_overrides(tmp_path: Path) -> None:
    flags = flag_overrides(task="gsm8k", backend="openai", model="1e-3", samples=8, temperature=0.7,
                           base_url="http://127.0.0.1:8000/v1", data_dir=tmp_path, chat=True, max_examples=5)
    cfg = build_config(None, ["teacher.samples=2", "teacher.concurrency=64"], flags)
    t = cfg.teacher
    assert (cfg.data.source, t.backend, t.model, t.samples, t.temperature, t.base_url, t.chat, t.concurrency) == (
        "gsm8k", "openai", "1e-3", 8, 0.7, "http://127.0.0.1:8000/v1", True, 64)
    assert cfg.data.data_dir == str(tmp_path) and cfg.data.max_source_examples == 5 and cfg.methods == ("ft_cot",)


def test_cli_gold_run_prints_summary(tmp_path: Path) -> None:
    res = _teach("--backend", "gold", "--task", "synth_last_letters", "--max-examples", "10", "--out", str(tmp_path))
    assert res.exit_code == 0, res.output
    assert "10/10 questions" in res.output and (tmp_path / "corpus.jsonl").is_file()


def test_prada_errors_are_typed() -> None:
    assert issubclass(TeacherError, PradaError) and issubclass(RunDirError, PradaError)
