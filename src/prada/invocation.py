"""``RUN_DIR/invocation.json``: what the latest ``prada run`` on a run directory is doing, for
``prada status``.

The files of a run directory say what is finished; they cannot say whether an unfinished stage is
still running, was killed, or failed. ``prada run`` keeps this one small file up to date (written
atomically at the start of each stage, never per step)::

    {"state": "running" | "finished" | "failed" | "interrupted",
     "stage": {"stage": "train", "model": "prada-seed0", "task": null} | null,
     "error": "TrainingError: non-finite loss at step 12 ..." | null,
     "pid": 4242, "host": "node-3", "process_start": "123456", "argv": [...],
     "started_at": 1767000000.0, "updated_at": 1767000100.0}

A ``running`` record whose process no longer exists (same host) means the run was killed (SIGKILL,
out of memory, a lost machine): ``process_alive`` tells, comparing the process's start time too so
that a recycled pid is not mistaken for the run.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from prada.errors import DataError
from prada.io import read_json, write_json_atomic

STAGES = ("teacher", "train", "eval", "features", "report")


def one_line_reason(error: BaseException) -> str:
    """``TrainingError: non-finite loss at step 12 ...``: the first line of the message."""
    if isinstance(error, KeyboardInterrupt):
        return "interrupted (Ctrl-C)"
    message = str(error).strip()
    name = type(error).__name__
    return f"{name}: {message.splitlines()[0]}" if message else name


def process_start(pid: int) -> str | None:
    """The start time of process ``pid`` in clock ticks since boot (Linux), else None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after its ')'.
    fields = stat[stat.rfind(")") + 2:].split()
    return fields[19] if len(fields) > 19 else None  # field 22 of the whole line


def process_alive(pid: int, host: str | None, started: str | None) -> bool | None:
    """Whether the recorded process still runs: True/False on this host, None on another one."""
    if host is not None and host != socket.gethostname():
        return None
    proc = Path(f"/proc/{pid}")
    if Path("/proc/self").exists():
        try:
            stat = (proc / "stat").read_text()
        except OSError:
            return False
        if stat[stat.rfind(")") + 2:].split()[:1] == ["Z"]:  # a zombie: it ended, unreaped
            return False
        return started is None or process_start(pid) == started
    try:  # no /proc (macOS): signal 0 only asks whether the pid exists
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Invocation:
    """Writer of ``invocation.json`` for one ``prada run`` (nothing is written before ``start``)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.record: dict[str, Any] | None = None

    def start(self) -> None:
        pid = os.getpid()
        now = time.time()
        self.record = {"state": "running", "stage": None, "error": None, "pid": pid, "host": socket.gethostname(),
                       "process_start": process_start(pid), "argv": list(sys.argv), "started_at": now,
                       "updated_at": now}
        self._write()

    def at(self, stage: str, model: str | None = None, task: str | None = None) -> None:
        """The stage now running (``stage`` in ``STAGES``)."""
        if self.record is None:
            return
        self.record["stage"] = {"stage": stage, "model": model, "task": task}
        self._write()

    def finish(self) -> None:
        if self.record is None:
            return
        self.record.update(state="finished", stage=None)
        self._write()

    def fail(self, error: BaseException) -> None:
        """Record why the run stopped; the stage it stopped in stays recorded."""
        if self.record is None:
            return
        state = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
        self.record.update(state=state, error=one_line_reason(error))
        self._write()

    def _write(self) -> None:
        assert self.record is not None  # internal: callers check
        self.record["updated_at"] = time.time()
        write_json_atomic(self.path, self.record)


def read_invocation(path: Path) -> dict[str, Any] | None:
    """The record, or None when there is none (or it cannot be read: status never fails on it)."""
    if not path.is_file():
        return None
    try:
        record = read_json(path)
    except (DataError, OSError, ValueError):  # a torn or foreign file must not stop `prada status`
        return None
    return record if isinstance(record, dict) else None
