"""ckpt.BackgroundWriter: one checkpoint job at a time in a thread; its errors reach training."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time

import pytest

from prada.errors import CheckpointError
from prada.training.checkpoint import BackgroundWriter


def test_jobs_run_one_at_a_time_in_order_and_exit_waits_for_the_last():
    order: list[int] = []
    release = threading.Event()

    def job(i: int):
        def run() -> None:
            if i == 0:
                release.wait(timeout=10)
            time.sleep(0.05)  # a job still running when the block exits would be caught below
            order.append(i)
        return run

    with BackgroundWriter() as writer:
        writer.submit(job(0))
        assert order == []  # submit returns while the job runs
        release.set()
        writer.submit(job(1))  # waits for job 0 first
        assert order == [0]
    assert order == [0, 1]


def test_a_failed_job_is_raised_at_the_next_submit_and_at_exit():
    def fail() -> None:
        raise OSError("No space left on device")

    writer = BackgroundWriter()
    writer.submit(fail)
    with pytest.raises(CheckpointError, match="No space left on device.*checkpoint before it is kept"):
        writer.submit(lambda: None)
    with pytest.raises(CheckpointError, match="OSError"):
        with BackgroundWriter() as w:
            w.submit(fail)


def test_leaving_on_an_error_finishes_the_job_and_keeps_the_original_error(caplog):
    finished = []

    def slow() -> None:
        time.sleep(0.1)
        finished.append(True)

    with pytest.raises(ValueError, match="non-finite loss"):
        with BackgroundWriter() as writer:
            writer.submit(slow)
            raise ValueError("non-finite loss")
    assert finished == [True]

    def fail() -> None:
        raise OSError("disk gone")

    with caplog.at_level(logging.ERROR), pytest.raises(KeyError):
        with BackgroundWriter() as writer:
            writer.submit(fail)
            raise KeyError("training error")
    assert "disk gone" in caplog.text  # logged, not raised over the training error


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
def test_jobs_run_at_the_lowest_cpu_priority_and_training_keeps_its_own():
    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen = []
    with BackgroundWriter() as writer:
        writer.submit(lambda: seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))
    assert seen == [19]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before
