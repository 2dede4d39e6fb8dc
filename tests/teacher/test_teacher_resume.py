"""A run killed with SIGKILL midway resumes without re-asking for anything cached, and writes the
same corpus as an uninterrupted run (server: tests/teacher/fake_server.py on 127.0.0.1)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from fake_server import FakeOpenAIServer
from teacher_helpers import openai_cfg, read_lines

from prada.config import to_dict
from prada.teacher import run_teacher_stage
from prada.teacher.cache import TeacherCache

REPO = Path(__file__).resolve().parents[2]

WORKER = """
import sys
from prada.config import load_config
from prada.teacher import run_teacher_stage
run_teacher_stage(load_config(sys.argv[1]), sys.argv[2])
"""


def server_keys_of_cache(path: Path) -> set[tuple[str, Any]]:
    """The fake server's identity of every sample in the cache (what it must not serve again)."""
    keys = set()
    for rec in TeacherCache(path).records:
        if rec["status"] != "ok":
            continue
        greedy = rec["sampling"]["temperature"] <= 0
        for s in rec["samples"]:
            keys.add((rec["prompt"], "greedy" if greedy else s["seed"]))
    return keys


def _start_worker(cfg_path: Path, out: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.Popen([sys.executable, "-c", WORKER, str(cfg_path), str(out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.parametrize("torn_tail", [False, True])
def test_sigkill_midway_then_resume(tmp_path: Path, arith_jsonl: Path, torn_tail: bool) -> None:
    with FakeOpenAIServer(delay_s=0.03) as srv:
        cfg = openai_cfg(srv.base_url, "teacher.concurrency=2", arith_jsonl=arith_jsonl)
        cfg_path = tmp_path / "cfg.yaml"
        cfg_path.write_text(yaml.safe_dump(to_dict(cfg)))
        out = tmp_path / "killed"
        proc = _start_worker(cfg_path, out)
        deadline = time.monotonic() + 60
        try:
            while srv.served_requests < 25:
                assert proc.poll() is None, f"the worker ended before it was killed: {proc.stderr.read().decode()[-2000:]}"
                assert time.monotonic() < deadline, "the worker made no progress"
                time.sleep(0.005)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait()
        assert proc.returncode == -signal.SIGKILL
        served_before_kill = srv.served_requests
        assert not (out / "corpus.jsonl").exists()
        if torn_tail:  # as if killed in the middle of an append
            with (out / "cache.jsonl").open("a") as f:
                f.write('{"v": 1, "status": "ok", "stage": "rationale", "samples": [{"key": "ab')
        cached = server_keys_of_cache(out / "cache.jsonl")
        n_cached_samples = len(TeacherCache(out / "cache.jsonl"))
        assert 0 < len(cached)

        # restart (no artificial delay): nothing cached is asked for again
        srv.delay_s = 0.0
        srv.reset_counts()
        summary = run_teacher_stage(cfg, out)
        assert summary["complete"]
        assert not cached & set(srv.counts), "a cached request was sent again"
        assert all(c == 1 for c in srv.counts.values())
        assert summary["this_run"]["samples_cached_at_start"] == n_cached_samples
        resumed_requests = srv.served_requests

        # uninterrupted reference run
        srv.reset_counts()
        ref = tmp_path / "uninterrupted"
        run_teacher_stage(cfg, ref)
        total_requests = srv.served_requests

    assert resumed_requests < total_requests <= resumed_requests + served_before_kill
    assert (out / "corpus.jsonl").read_bytes() == (ref / "corpus.jsonl").read_bytes()
    # the cache holds each sample once, and a repaired (torn-tail-free) last line
    lines = (out / "cache.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    keys = [s["key"] for r in records if r["status"] == "ok" for s in r["samples"]]
    assert len(keys) == len(set(keys))
    assert len(read_lines(ref / "corpus.jsonl")) > 0
