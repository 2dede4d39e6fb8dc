"""The openai backend against a real HTTP server on 127.0.0.1 (tests/teacher/fake_server.py)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from fake_server import FakeOpenAIServer
from teacher_helpers import ArithTask, openai_cfg, read_lines

from prada.errors import TeacherError
from prada.teacher import run_teacher_stage
from prada.teacher.backends.openai_backend import OpenAIBackend


def _cache_keys(out: Path, stage: str | None = None) -> Counter[str]:
    keys: Counter[str] = Counter()
    for rec in read_lines(out / "cache.jsonl"):
        if rec["status"] == "ok" and (stage is None or rec["stage"] == stage):
            keys.update(s["key"] for s in rec["samples"])
    return keys


def test_generation_completes_with_every_sample_once(server: FakeOpenAIServer, arith_task: ArithTask, tmp_path: Path) -> None:
    cfg = openai_cfg(server.base_url, "teacher.samples=5")
    summary = run_teacher_stage(cfg, tmp_path, task=arith_task)
    n_q = len(arith_task.examples)
    assert summary["complete"] and summary["questions"] == n_q and summary["samples_answered"] == 5 * n_q
    # every rationale sample exactly once in the cache, and requested exactly once from the server
    rationale_keys = _cache_keys(tmp_path, "rationale")
    assert len(rationale_keys) == 5 * n_q and set(rationale_keys.values()) == {1}
    assert all(c == 1 for c in server.counts.values())
    # n: samples 1..4 go in one request per question, plus the greedy one
    assert sum(1 for r in read_lines(tmp_path / "cache.jsonl") if r["stage"] == "rationale") == 2 * n_q
    corpus = read_lines(tmp_path / "corpus.jsonl")
    assert corpus and all(r["correct"] for r in corpus) and len(corpus) == summary["kept"]
    order = [(int(r["example_id"].split("/")[1]), r["sample_index"]) for r in corpus]
    assert order == sorted(order)
    for ex_id in {r["example_id"] for r in corpus}:
        rats = [" ".join(r["rationale"].split()) for r in corpus if r["example_id"] == ex_id]
        assert len(rats) == len(set(rats)), "duplicates must be dropped"
    assert summary["duplicates_dropped"] > 0  # the scripted teacher repeats itself
    assert summary["samples_correct"] == summary["kept"] + summary["duplicates_dropped"]
    assert server.max_inflight <= 4
    assert summary["usage"]["prompt_tokens"] > 0 and summary["usage"]["completion_tokens"] > 0
    rec = corpus[0]
    assert rec["teacher"] == {"backend": "openai", "model": "fake-teacher", "prompt": "zero_shot_cot", "chat": False}
    assert rec["prompts"]["rationale"].endswith("A: Let's think step by step.")
    assert rec["prompts"]["answer"].endswith("\nTherefore, the answer (arabic numerals) is")
    assert rec["raw"]["answer_completion"].startswith("Therefore, the answer (arabic numerals) is ")
    assert "latency_s" not in str(rec) and "time" not in rec


def test_rerun_sends_nothing(server: FakeOpenAIServer, arith_task: ArithTask, tmp_path: Path) -> None:
    cfg = openai_cfg(server.base_url)
    first = run_teacher_stage(cfg, tmp_path, task=arith_task)
    corpus = (tmp_path / "corpus.jsonl").read_bytes()
    server.reset_counts()
    second = run_teacher_stage(cfg, tmp_path, task=arith_task)
    assert server.requests == 0 and second["this_run"]["requests"] == 0
    assert (tmp_path / "corpus.jsonl").read_bytes() == corpus
    assert second["usage"] == first["usage"]


@pytest.mark.parametrize("fault", ["429", "429date", "500", "slow", "drop", "malformed"])
def test_faults_are_retried(fault: str, arith_task: ArithTask, tmp_path: Path) -> None:
    # every third request fails once with `fault`
    plan = {n: fault for n in range(1, 40, 3)}
    with FakeOpenAIServer(faults=plan, slow_s=0.6) as srv:
        cfg = openai_cfg(srv.base_url, "teacher.request_timeout=0.25")
        summary = run_teacher_stage(cfg, tmp_path, task=arith_task)
        faults = len(srv.fault_log)
    assert faults > 3
    assert summary["complete"] and summary["failed_samples"] == 0
    keys = _cache_keys(tmp_path)
    assert set(keys.values()) == {1}
    assert summary["samples_answered"] == 4 * len(arith_task.examples)
    # the same corpus as a run without faults
    with FakeOpenAIServer() as srv:
        clean = tmp_path / "clean"
        run_teacher_stage(openai_cfg(srv.base_url), clean, task=arith_task)
    assert (tmp_path / "corpus.jsonl").read_bytes() == (clean / "corpus.jsonl").read_bytes()


def test_retry_after_is_honoured(arith_task: ArithTask, tmp_path: Path) -> None:
    arith_task.examples = arith_task.examples[:1]
    with FakeOpenAIServer(faults={1: "429"}, retry_after="0.3") as srv:
        summary = run_teacher_stage(openai_cfg(srv.base_url, "teacher.samples=1"), tmp_path, task=arith_task)
    rec = next(r for r in read_lines(tmp_path / "cache.jsonl") if r["stage"] == "rationale")
    assert rec["attempts"] == 2 and rec["latency_s"] >= 0.3
    assert summary["complete"]


def test_give_up_becomes_error_record_then_rerun_finishes(arith_task: ArithTask, tmp_path: Path) -> None:
    arith_task.examples = arith_task.examples[:3]
    always_500 = lambda n, body: "500" if "Tom has 4 apples" in str(body) else None  # noqa: E731
    with FakeOpenAIServer(faults=always_500) as srv:
        cfg = openai_cfg(srv.base_url, "teacher.max_retries=2")
        summary = run_teacher_stage(cfg, tmp_path, task=arith_task)
    assert not summary["complete"] and summary["failed_samples"] == 4
    assert all(x.startswith("arith/1#") for x in summary["failed_examples"])
    errors = [r for r in read_lines(tmp_path / "cache.jsonl") if r["status"] == "error"]
    assert errors and all("HTTP 500" in r["error"] and r["attempts"] == 3 for r in errors)
    done_keys = set(_cache_keys(tmp_path))
    with FakeOpenAIServer() as srv:
        summary = run_teacher_stage(openai_cfg(srv.base_url, "teacher.max_retries=2"), tmp_path, task=arith_task)
        served = set(srv.counts)
    assert summary["complete"]
    # only the failed question was asked again
    assert all("Tom has 4 apples" in key[0] for key in served)
    assert done_keys <= set(_cache_keys(tmp_path))


@pytest.mark.parametrize("mode", ["reject_n", "few"])
def test_n_fallback(mode: str, arith_task: ArithTask, tmp_path: Path) -> None:
    kwargs = {"reject_n": True} if mode == "reject_n" else {"faults": lambda n, body: "few" if (body.get("n") or 1) > 1 else None}
    with FakeOpenAIServer(**kwargs) as srv:
        summary = run_teacher_stage(openai_cfg(srv.base_url), tmp_path, task=arith_task)
        assert all(c == 1 for c in srv.counts.values())
    assert summary["complete"]
    with FakeOpenAIServer() as srv:
        run_teacher_stage(openai_cfg(srv.base_url), tmp_path / "ref", task=arith_task)
    assert (tmp_path / "corpus.jsonl").read_bytes() == (tmp_path / "ref" / "corpus.jsonl").read_bytes()


def test_chat_uses_chat_completions(server: FakeOpenAIServer, arith_task: ArithTask, tmp_path: Path) -> None:
    server.keep_bodies = True
    summary = run_teacher_stage(openai_cfg(server.base_url, "teacher.chat=true"), tmp_path, task=arith_task)
    assert summary["complete"] and summary["kept"] > 0
    assert all("messages" in b for b in server.bodies)
    answer_bodies = [b for b in server.bodies if len(b["messages"]) == 3]
    assert answer_bodies and answer_bodies[0]["messages"][2] == {"role": "user", "content": "Therefore, the answer (arabic numerals) is"}
    rec = read_lines(tmp_path / "corpus.jsonl")[0]
    assert rec["prompts"]["rationale"][0]["role"] == "user" and rec["teacher"]["chat"] is True


def test_missing_api_key_names_the_variable(arith_task: ArithTask, tmp_path: Path) -> None:
    cfg = openai_cfg("https://api.example.com/v1", "teacher.api_key_env=MY_TEACHER_KEY")
    with pytest.raises(TeacherError, match="MY_TEACHER_KEY"):
        run_teacher_stage(cfg, tmp_path, task=arith_task)
    assert not (tmp_path / "cache.jsonl").exists()


def test_api_key_is_sent_from_the_env(arith_task: ArithTask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    arith_task.examples = arith_task.examples[:2]
    with FakeOpenAIServer(api_key="sk-test") as srv:
        with pytest.raises(TeacherError, match="rejected the API key from \\$OPENAI_API_KEY"):
            run_teacher_stage(openai_cfg(srv.base_url), tmp_path, task=arith_task)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        assert run_teacher_stage(openai_cfg(srv.base_url), tmp_path, task=arith_task)["complete"]


def test_unknown_model_is_a_clear_error_and_the_cache_is_intact(server: FakeOpenAIServer, arith_task: ArithTask, tmp_path: Path) -> None:
    run_teacher_stage(openai_cfg(server.base_url), tmp_path, task=arith_task)
    before = (tmp_path / "cache.jsonl").read_bytes()
    with pytest.raises(TeacherError, match="teacher.model 'no-such-model'"):
        run_teacher_stage(openai_cfg(server.base_url, "teacher.model=no-such-model"), tmp_path, task=arith_task)
    assert (tmp_path / "cache.jsonl").read_bytes() == before


def test_loopback_urls() -> None:
    OpenAIBackend("m", base_url="http://localhost:9/v1")  # no key needed
    OpenAIBackend("m", base_url="http://[::1]:9/v1")
    with pytest.raises(TeacherError, match="OPENAI_API_KEY"):
        OpenAIBackend("m", base_url=None)


def test_a_key_embedded_in_the_base_url_reaches_no_file(server: FakeOpenAIServer, arith_task: ArithTask,
                                                        tmp_path: Path) -> None:
    secret = "sk-embedded-7f3a"
    with_key = server.base_url.replace("http://", f"http://me:{secret}@")
    cfg = openai_cfg(with_key)
    summary = run_teacher_stage(cfg, tmp_path, task=arith_task)
    assert summary["complete"] and server.requests > 0  # the URL was used as given
    assert summary["teacher_config"]["base_url"] == server.base_url
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert secret not in path.read_text(encoding="utf-8"), path
