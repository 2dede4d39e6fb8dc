"""``prada.progress``: live bars on a terminal, plain lines in a log, a summary line per stage."""

from __future__ import annotations

import doctest
import io

import pytest

import prada.progress
from prada.progress import Progress


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class TerminalStream(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_doctests() -> None:
    assert doctest.testmod(prada.progress).failed == 0


def test_progress_flags_are_accepted_after_the_sub_command() -> None:
    from prada.cli import hoist_progress_flags

    assert hoist_progress_flags(["run", "c.yaml", "--progress", "seeds=[0]"]) == ["--progress", "run", "c.yaml",
                                                                                  "seeds=[0]"]
    # After `--` everything is the sub-command's (e.g. an override that happens to look like it).
    assert hoist_progress_flags(["run", "--", "--no-progress"]) == ["run", "--", "--no-progress"]


def test_plain_mode_writes_a_line_per_interval_then_one_summary() -> None:
    out, clock = io.StringIO(), FakeClock()
    progress = Progress("plain", stream=out, interval_s=30, clock=clock)
    with progress.stage("evaluate m on t", total=100, unit="questions") as stage:
        for _ in range(10):  # 10 batches of 10 questions, 10 s each: 100 s in all
            clock.now += 10
            stage.advance(10, tokens=50)
    lines = out.getvalue().splitlines()
    # t=30, 60, 90 (every 30 s, not per batch), then the summary at t=100.
    assert len(lines) == 4, lines
    assert lines[0] == ("evaluate m on t: 30/100 questions (30%), 1.00 questions/s, 5.00 tokens/s, "
                        "elapsed 30s, ETA 1m10s")
    assert lines[-1] == "evaluate m on t: 100/100 questions in 1m40s (1.00 questions/s, 5.00 tokens/s)"
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue()


def test_fields_and_resumed_stages() -> None:
    out, clock = io.StringIO(), FakeClock()
    progress = Progress("plain", stream=out, interval_s=0, clock=clock)
    with progress.stage("train prada-seed0", total=40, unit="steps", initial=10) as stage:
        clock.now += 10
        stage.show(L_y=1.23456, L_d=None, **{"lambda": 0.05})
        stage.advance(5, tokens=800)
    first, summary = out.getvalue().splitlines()  # show() alone writes no line: advance() does
    # The rate counts the steps of this session only (resumed at 10): 5 steps in 10 s.
    assert "15/40 steps (38%), L_y=1.23, lambda=0.05, 0.50 steps/s, 80.0 tokens/s" in first
    assert "ETA 50s" in first and "L_d" not in first
    assert summary == "train prada-seed0: 15/40 steps in 10s (0.50 steps/s, 80.0 tokens/s, resumed at 10)"


def test_quiet_prints_only_summaries_and_off_prints_nothing() -> None:
    quiet, off = io.StringIO(), io.StringIO()
    for mode, out in (("quiet", quiet), ("off", off)):
        with Progress(mode, stream=out, interval_s=0).stage("features m", total=3, unit="questions") as stage:
            stage.advance(3)
    assert quiet.getvalue().count("\n") == 1 and quiet.getvalue().startswith("features m: 3/3 questions in ")
    assert off.getvalue() == ""


def test_a_failing_stage_says_where_it_stopped() -> None:
    out, clock = io.StringIO(), FakeClock()
    with pytest.raises(ValueError):
        with Progress("quiet", stream=out, clock=clock).stage("train x", total=5, unit="steps") as stage:
            stage.advance(2)
            clock.now = 3
            raise ValueError("boom")
    assert out.getvalue() == "train x: failed (ValueError) at 2/5 steps after 3s\n"


def test_progress_context_closes_stages_left_open() -> None:
    out = io.StringIO()
    with pytest.raises(KeyboardInterrupt):
        with Progress("quiet", stream=out) as progress:
            progress.stage("train y", total=5, unit="steps").advance(1)
            raise KeyboardInterrupt
    assert out.getvalue().startswith("train y: interrupted at 1/5 steps")
    assert progress.active == []


def test_live_mode_draws_bars_and_keeps_summaries() -> None:
    out = io.StringIO()
    with Progress("live", stream=out) as progress:
        with progress.stage("evaluate m on t", total=4, unit="questions") as stage:
            stage.advance(4, tokens=12)
    text = out.getvalue()
    assert "\x1b[" in text, "a live display redraws with terminal control codes"
    assert "evaluate m on t: 4/4 questions in " in text
    assert progress._live is None, "the display stops with its last stage"


def test_auto_mode_follows_the_stream() -> None:
    assert Progress("auto", stream=io.StringIO()).mode == "plain"
    assert Progress("auto", stream=TerminalStream()).mode == "live"
    with pytest.raises(ValueError, match="valid modes"):
        Progress("loud")  # type: ignore[arg-type]


def test_interval_comes_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("PRADA_PROGRESS_INTERVAL_S", "2.5")
    assert Progress("plain").interval_s == 2.5
    monkeypatch.setenv("PRADA_PROGRESS_INTERVAL_S", "soon")
    assert Progress("plain").interval_s == 30.0


def test_stage_callback_adapts_the_teachers_progress() -> None:
    out, clock = io.StringIO(), FakeClock()
    progress = Progress("quiet", stream=out, clock=clock)
    with progress.stage_callback("teacher", "samples") as callback:
        callback("rationale", 0, 4)
        for done in (2, 4):  # two requests of n=2 samples each
            clock.now += 1
            callback("rationale", done, 4)
        callback("answer", 0, 4)  # a new sub-stage closes the previous one
        clock.now += 1
        callback("answer", 4, 4)
    lines = out.getvalue().splitlines()
    assert lines == ["teacher rationale: 4/4 samples in 2s (2.00 samples/s, 1.00 requests/s)",
                     "teacher answer: 4/4 samples in 1s (4.00 samples/s, 1.00 requests/s)"]
