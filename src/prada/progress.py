"""Progress of long stages: one mechanism (on ``rich``) for the teacher, training, evaluation,
features, report and sweep.

A ``Progress`` hands out one ``Stage`` per piece of work; the stage counts, the ``Progress``
decides how that is shown::

    progress = Progress()                       # "auto": a live bar on a terminal, else plain lines
    with progress.stage("evaluate prada-seed0 on gsm8k", total=200, unit="questions") as stage:
        for batch in batches:
            stage.advance(len(batch), tokens=generated)   # extra counters are shown as rates
    # stderr: "evaluate prada-seed0 on gsm8k: 200/200 questions in 2m10s (1.54 questions/s, 45.1 tokens/s)"

Modes:

``live``   a bar per running stage, redrawn in place (what a terminal wants);
``plain``  one line per running stage at most every ``interval_s`` seconds (30 by default, or
           ``$PRADA_PROGRESS_INTERVAL_S``): what a log file wants instead of carriage returns;
``quiet``  nothing while a stage runs;
``off``    nothing at all, not even the summary: the default of library functions called without a
           ``progress`` (tests, notebooks).

``auto`` is ``live`` when stderr is a terminal and ``plain`` otherwise. In every mode but ``off`` a
finished stage prints one summary line. Everything goes to stderr, so stdout keeps what commands
print as their result (tables, ``--json``).

>>> import io
>>> out = io.StringIO()
>>> with Progress("quiet", stream=out, clock=iter(range(100)).__next__).stage("count", total=3) as s:
...     s.advance(3)
>>> out.getvalue()
'count: 3/3 items in 1s (3.00 items/s)\\n'
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Literal, TextIO

Mode = Literal["auto", "live", "plain", "quiet", "off"]
MODES: tuple[str, ...] = ("auto", "live", "plain", "quiet", "off")

DEFAULT_INTERVAL_S = 30.0
INTERVAL_ENV = "PRADA_PROGRESS_INTERVAL_S"
CLI_MODE: ContextVar[str] = ContextVar("prada_cli_progress_mode", default="auto")
"""The mode the ``prada`` command line asked for with ``--progress/--no-progress``, for the duration
of one command (set by ``prada.cli``; read by ``from_cli``)."""


# --------------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------------


def format_duration(seconds: float) -> str:
    """``42s``, ``2m10s``, ``1h02m``.

    >>> format_duration(42.4), format_duration(130), format_duration(3720)
    ('42s', '2m10s', '1h02m')
    """
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def format_rate(value: float) -> str:
    """Three significant figures at most: ``812``, ``45.1``, ``1.54``."""
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _format_field(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


# --------------------------------------------------------------------------------------------
# A stage
# --------------------------------------------------------------------------------------------


class Stage:
    """The counter of one piece of work. Thread-safe: teacher requests finish on worker threads.

    ``advance(n, **counts)`` adds ``n`` units done and adds to named counters (``tokens=...``,
    ``requests=1``), shown as rates; ``show(**fields)`` sets values shown as they are (losses);
    ``close(note)`` prints the summary line. As a context manager, an exception instead prints where
    the stage stopped and is re-raised.
    """

    def __init__(self, owner: Progress, name: str, total: int | None, unit: str, initial: int) -> None:
        self.owner = owner
        self.name = name
        self.total = total
        self.unit = unit
        self.initial = initial
        self.completed = initial
        self.counts: dict[str, float] = {}
        self.fields: dict[str, Any] = {}
        self.started = owner.clock()
        self.last_line = self.started
        self.closed = False
        self.handle: Any = None  # the rich task id in live mode

    # -- counting ------------------------------------------------------------------------------

    def advance(self, n: int = 1, **counts: float) -> None:
        with self.owner.lock:
            self.completed += n
            for key, value in counts.items():
                self.counts[key] = self.counts.get(key, 0) + value
        self.owner.changed(self)

    def show(self, **fields: Any) -> None:
        """Values shown from the next ``advance`` on (set them before it: a line is due then)."""
        with self.owner.lock:
            self.fields.update({k: v for k, v in fields.items() if v is not None})

    def set_total(self, total: int | None) -> None:
        with self.owner.lock:
            self.total = total
        self.owner.changed(self)

    # -- what is shown -------------------------------------------------------------------------

    def elapsed(self) -> float:
        return max(0.0, self.owner.clock() - self.started)

    def rates(self, elapsed: float) -> str:
        """``1.54 questions/s, 45.1 tokens/s`` over this session (a resumed stage counts from
        where it resumed)."""
        if elapsed <= 0:
            return ""
        parts = [f"{format_rate((self.completed - self.initial) / elapsed)} {self.unit}/s"]
        parts += [f"{format_rate(v / elapsed)} {k}/s" for k, v in self.counts.items()]
        return ", ".join(parts)

    def eta(self, elapsed: float) -> float | None:
        done = self.completed - self.initial
        if self.total is None or done <= 0:
            return None
        return elapsed / done * max(0, self.total - self.completed)

    def count_text(self) -> str:
        return f"{self.completed}/{self.total}" if self.total is not None else str(self.completed)

    def info(self, elapsed: float) -> str:
        """Fields (losses: what a watcher looks for first), then rates: the live bar's last column
        and the middle of a plain line."""
        parts = [f"{k}={_format_field(v)}" for k, v in self.fields.items()]
        rates = self.rates(elapsed)
        return ", ".join([*parts, rates] if rates else parts)

    def line(self) -> str:
        """One plain progress line."""
        elapsed = self.elapsed()
        pct = f" ({100 * self.completed / self.total:.0f}%)" if self.total else ""
        info = self.info(elapsed)
        eta = self.eta(elapsed)
        return (f"{self.name}: {self.count_text()} {self.unit}{pct}" + (f", {info}" if info else "")
                + f", elapsed {format_duration(elapsed)}" + (f", ETA {format_duration(eta)}" if eta is not None else ""))

    def summary(self, note: str = "") -> str:
        elapsed = self.elapsed()
        rates = self.rates(elapsed)
        resumed = f", resumed at {self.initial}" if self.initial else ""
        text = f"{self.name}: {self.count_text()} {self.unit} in {format_duration(elapsed)}"
        text += f" ({rates}{resumed})" if rates else ""
        return text + (f"; {note}" if note else "")

    # -- ending --------------------------------------------------------------------------------

    def close(self, note: str = "") -> None:
        """Print the summary line (once)."""
        if not self.closed:
            self.closed = True
            self.owner.finished(self, self.summary(note))

    def __enter__(self) -> Stage:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        elif not self.closed:
            self.closed = True
            reason = "interrupted" if issubclass(exc_type, KeyboardInterrupt) else f"failed ({exc_type.__name__})"
            self.owner.finished(self, f"{self.name}: {reason} at {self.count_text()} {self.unit} after "
                                      f"{format_duration(self.elapsed())}")


# --------------------------------------------------------------------------------------------
# The display
# --------------------------------------------------------------------------------------------


def _interval_from_env() -> float:
    text = os.environ.get(INTERVAL_ENV)
    if not text:
        return DEFAULT_INTERVAL_S
    try:
        return max(0.0, float(text))
    except ValueError:
        return DEFAULT_INTERVAL_S


class Progress:
    """Hands out stages and shows them according to ``mode`` (see the module docstring).

    ``stream`` defaults to ``sys.stderr`` as it is when a stage starts (so pytest's capture sees
    it); ``interval_s`` is the plain mode's period; ``clock`` is injectable for tests.
    """

    def __init__(self, mode: Mode = "auto", *, stream: TextIO | None = None, interval_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if mode not in MODES:
            raise ValueError(f"progress mode '{mode}': valid modes are {list(MODES)}")
        self.requested_mode = mode
        self._stream = stream
        self.interval_s = _interval_from_env() if interval_s is None else interval_s
        self.clock = clock
        self.lock = threading.RLock()
        self.active: list[Stage] = []
        self._live: Any = None  # rich.progress.Progress while a stage runs in live mode
        self._console: Any = None

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stderr

    @property
    def mode(self) -> str:
        if self.requested_mode != "auto":
            return self.requested_mode
        isatty = getattr(self.stream, "isatty", None)
        return "live" if isatty is not None and isatty() else "plain"

    def stage(self, name: str, total: int | None, unit: str = "items", *, initial: int = 0) -> Stage:
        """Start a stage of ``total`` units (None: unknown); use it as a context manager."""
        stage = Stage(self, name, total, unit, initial)
        if self.mode == "off":
            return stage
        with self.lock:
            self.active.append(stage)
            if self.mode == "live":
                live = self._start_live()
                stage.handle = live.add_task(name, total=total, completed=initial, info="", unit=unit)
        return stage

    @contextmanager
    def stage_callback(self, prefix: str, unit: str) -> Iterator[Callable[[str, int, int], None]]:
        """Adapt ``callback(sub_stage, done, total)`` progress (the teacher's) to stages named
        ``"{prefix} {sub_stage}"``. A call after the first of a sub-stage is one finished request
        (shown as requests/s); a new sub-stage closes the previous one."""
        stages: dict[str, Stage] = {}
        current: list[Stage] = []

        def callback(sub_stage: str, done: int, total: int) -> None:
            stage = stages.get(sub_stage)
            if stage is None:
                for previous in current:
                    previous.close()
                current.clear()
                stage = stages[sub_stage] = self.stage(f"{prefix} {sub_stage}", total, unit)
                current.append(stage)
                stage.advance(done)
                return
            stage.set_total(total)
            stage.advance(done - stage.completed, requests=1)

        try:
            yield callback
        except BaseException as e:
            for stage in current:
                stage.__exit__(type(e), e, None)
            raise
        for stage in current:
            stage.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        """Whatever stage an exception left open gets its 'stopped' line; a live display ends."""
        for stage in list(self.active):
            if exc_type is None:
                stage.close()
            else:
                stage.__exit__(exc_type, exc, tb)
        with self.lock:
            if self._live is not None:
                self._live.stop()
                self._live = None

    # -- called by stages ----------------------------------------------------------------------

    def changed(self, stage: Stage) -> None:
        mode = self.mode
        if mode == "live":
            with self.lock:
                if stage.handle is not None and self._live is not None:
                    self._live.update(stage.handle, completed=stage.completed, total=stage.total,
                                      info=stage.info(stage.elapsed()))
        elif mode == "plain":
            with self.lock:
                now = self.clock()
                if now - stage.last_line < self.interval_s:
                    return
                stage.last_line = now
                self._write(stage.line())

    def finished(self, stage: Stage, summary: str) -> None:
        if self.mode == "off":
            return
        with self.lock:
            if stage in self.active:
                self.active.remove(stage)
            if self._live is not None and stage.handle is not None:
                self._live.remove_task(stage.handle)
                self._console.print(summary, highlight=False, markup=False, soft_wrap=True)
                if not self.active:
                    self._live.stop()
                    self._live = None
                return
            self._write(summary)

    # -- output --------------------------------------------------------------------------------

    def _write(self, line: str) -> None:
        stream = self.stream
        stream.write(line + "\n")
        stream.flush()

    def _start_live(self) -> Any:
        if self._live is not None:
            return self._live
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
        from rich.progress import Progress as RichProgress
        from rich.table import Column

        self._console = Console(file=self.stream, force_terminal=True, highlight=False)
        stdout_isatty = getattr(sys.stdout, "isatty", None)
        self._live = RichProgress(
            TextColumn("{task.description}"), BarColumn(bar_width=24), MofNCompleteColumn(),
            TextColumn("{task.fields[unit]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            # Rates and losses take what width is left and are cut first on a narrow terminal.
            TextColumn("{task.fields[info]}", table_column=Column(ratio=1, no_wrap=True, overflow="ellipsis")),
            console=self._console, refresh_per_second=4, expand=True,
            # Print what the command writes to stdout above the bars only when stdout is this
            # terminal too; piped stdout (a table, --json) must reach its pipe untouched.
            redirect_stdout=bool(stdout_isatty and stdout_isatty()), redirect_stderr=True,
        )
        self._live.start()
        return self._live


def silent() -> Progress:
    """A ``Progress`` that shows nothing (the default of library functions)."""
    return Progress("off")


def from_cli() -> Progress:
    """The ``Progress`` the ``prada`` command line asked for (``--progress/--no-progress``);
    ``auto`` outside a command (or when neither flag was given)."""
    return Progress(CLI_MODE.get())  # type: ignore[arg-type]
