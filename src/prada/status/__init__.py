"""Where a run directory stands, from its files alone (``prada status RUN_DIR``).

``inspect_run(root)`` reads ``config.yaml`` for the grid the run should produce (teacher; methods ×
seeds trained; every model evaluated on every task; features; report), then each stage's own
outputs for what exists, and ``invocation.json`` for what the latest ``prada run`` is doing. It
writes nothing, loads no model and no dataset. Each item of the grid is one of:

``done``         its outputs exist (with wall time and throughput from its summary or metrics);
``running``      the latest ``prada run`` is at it and its process is alive (training: step k of N);
``interrupted``  started and unfinished, with no live process (killed, Ctrl-C, machine lost):
                 ``prada run`` resumes it (training from its latest checkpoint);
``failed``       the latest ``prada run`` stopped on it with an error (the one-line reason);
``pending``      not started.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from prada.errors import DataError, RunDirError
from prada.eval_metrics import EvalMetrics
from prada.invocation import process_alive, read_invocation
from prada.io import read_json
from prada.methods import ZERO_SHOT_MODEL
from prada.paths import RunPaths, model_name, parse_model_name

State = Literal["done", "running", "interrupted", "failed", "pending"]
WEIGHTS_NOT_KEPT = "weights not kept"


@dataclass(frozen=True)
class Item:
    """One piece of the grid: the teacher, one training run, one evaluation, one feature file, the report."""

    stage: str
    """``teacher`` | ``train`` | ``eval`` | ``features`` | ``report``."""
    state: State
    model: str | None = None
    """``prada-seed0``, a snapshot ``prada-seed0@step-10``, or ``zero_shot_cot``."""
    task: str | None = None
    detail: str = ""
    """What to know at a glance: ``step 12 of 40``, ``accuracy 61.5% (123/200)``, a failure's reason."""
    wall_s: float | None = None
    throughput: float | None = None
    """Per second, in ``throughput_unit``: tokens (training, evaluation) or requests (teacher)."""
    throughput_unit: str | None = None
    step: int | None = None
    max_steps: int | None = None
    accuracy: float | None = None
    """An evaluation's accuracy (0-1)."""

    @property
    def label(self) -> str:
        """``train prada-seed0``, ``eval prada-seed0 on gsm8k``, ``report``."""
        parts = [self.stage, *(p for p in (self.model,) if p)]
        return " ".join(parts) + (f" on {self.task}" if self.task else "")


@dataclass
class RunStatus:
    root: Path
    name: str | None
    invocation: dict[str, Any] | None
    """``invocation.json`` plus ``alive`` (True/False; None when it ran on another host)."""
    items: list[Item] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def left(self) -> list[Item]:
        """What a ``prada run`` of this config would still do."""
        return [i for i in self.items if i.state != "done"]

    def left_summary(self) -> str:
        """``train 1 (28 steps), eval 6, features 2, report`` or ``nothing``."""
        left = self.left()
        if not left:
            return "nothing"
        parts: list[str] = []
        for stage in ("teacher", "train", "eval", "features", "report"):
            items = [i for i in left if i.stage == stage]
            if not items:
                continue
            if stage in ("teacher", "report"):
                parts.append(stage)
                continue
            text = f"{stage} {len(items)}"
            if stage == "train":
                steps = sum((i.max_steps or 0) - (i.step or 0) for i in items)
                text += f" ({steps} steps)" if steps else ""
            parts.append(text)
        return ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {"run_dir": str(self.root), "name": self.name, "invocation": self.invocation,
                "items": [{**asdict(i), "label": i.label} for i in self.items],
                "left": [i.label for i in self.left()], "left_summary": self.left_summary(), "notes": self.notes}


# --------------------------------------------------------------------------------------------
# The config's grid (read as plain YAML over the defaults: status never refuses an old config)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grid:
    name: str
    methods: list[str]
    seeds: list[int]
    eval_tasks: list[str]
    zero_shot: bool
    max_steps: int
    log_every: int
    snapshot_steps: list[int]
    features: bool


def _setting(raw: dict[str, Any], defaults: dict[str, Any], dotted: str) -> Any:
    for source in (raw, defaults):
        node: Any = source
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                break
            node = node[part]
        else:
            return node
    return None


def read_grid(paths: RunPaths) -> Grid:
    from prada.config import RunConfig, to_dict

    try:
        raw = yaml.safe_load(paths.config.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise RunDirError(f"{paths.config}: cannot be read ({e.__class__.__name__}); is this a run directory?") from None
    if not isinstance(raw, dict):
        raise RunDirError(f"{paths.config}: not a run config (the top level is not a mapping)")
    defaults = to_dict(RunConfig())

    def get(key: str) -> Any:
        return _setting(raw, defaults, key)

    source, targets = get("data.source"), list(get("data.targets") or [])
    eval_tasks = [source, *targets] if get("eval.tasks") == "all" else [source]
    max_steps, save_every = int(get("train.max_steps")), int(get("train.save_every") or 0)
    snapshots = list(range(save_every, max_steps, save_every)) if get("train.eval_checkpoints") and save_every > 0 else []
    return Grid(
        name=str(get("name")), methods=list(get("methods") or []), seeds=list(get("seeds") or []),
        eval_tasks=eval_tasks, zero_shot=bool(get("eval.zero_shot_baseline")), max_steps=max_steps,
        log_every=int(get("train.log_every") or 1), snapshot_steps=snapshots,
        # As `prada run` decides it (with its report on): t-SNE and the A-distance need targets.
        features=len(eval_tasks) > 1,
    )


# --------------------------------------------------------------------------------------------
# Each stage, from its files
# --------------------------------------------------------------------------------------------


def _read(path: Path) -> dict[str, Any] | None:
    try:
        value = read_json(path)
    except (DataError, OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _read_metrics(path: Path) -> EvalMetrics | None:
    """An evaluation's metrics; None when its file is missing or unreadable (as ``_read``)."""
    if not path.is_file():
        return None
    try:
        return EvalMetrics.read(path)
    except (DataError, RunDirError, OSError):
        return None


def _rate(value: Any, unit: str) -> dict[str, Any]:
    """``throughput``/``throughput_unit`` keyword arguments of an ``Item`` (none for a missing value)."""
    if isinstance(value, (int, float)) and value > 0:
        return {"throughput": float(value), "throughput_unit": unit}
    return {}


class _Inspector:
    def __init__(self, paths: RunPaths, invocation: dict[str, Any] | None) -> None:
        self.paths = paths
        self.invocation = invocation

    def unfinished(self, stage: str, model: str | None = None, task: str | None = None) -> tuple[State, str] | None:
        """The state of an unfinished item the latest invocation stopped or runs at, else None."""
        inv = self.invocation
        if inv is None or inv.get("stage") != {"stage": stage, "model": model, "task": task}:
            return None
        state = inv.get("state")
        if state == "running":
            if inv.get("alive") is False:
                return "interrupted", f"process {inv.get('pid')} ended without finishing (killed?)"
            if inv.get("alive") is None:
                return "running", f"on {inv.get('host')} (not checked from this host)"
            return "running", ""
        if state in ("failed", "interrupted"):
            return state, str(inv.get("error") or "")
        return None

    def teacher(self) -> Item:
        summary = _read(self.paths.teacher_summary)
        if summary is not None:
            run = summary.get("this_run") or {}
            wall = run.get("wall_s")
            requests = run.get("requests")
            rate = _rate(requests / wall, "requests") if isinstance(requests, int) and wall else {}
            detail = (f"{summary.get('kept', '?')} rationales for {summary.get('questions_with_correct', '?')}/"
                      f"{summary.get('questions', '?')} questions")
            if summary.get("complete", True):
                return Item("teacher", "done", detail=detail, wall_s=wall, **rate)
            return Item("teacher", "failed", wall_s=wall, **rate,
                        detail=f"{summary.get('failed_samples', '?')} samples failed after all retries; "
                               "re-run to retry only those")
        live = self.unfinished("teacher")
        cached = self.paths.teacher_cache.is_file()
        detail = "requests cached so far are kept" if cached else ""
        if live is not None:
            return Item("teacher", live[0], detail=live[1] or detail)
        return Item("teacher", "interrupted" if cached else "pending", detail=detail)

    def train(self, method: str, seed: int, max_steps: int, log_every: int = 1) -> Item:
        name = model_name(method, seed)
        summary = _read(self.paths.train_summary(method, seed))
        if summary is not None:
            kept = self.paths.final_dir(method, seed).is_dir()
            detail = f"{summary.get('steps', '?')} steps" + ("" if kept else f", {WEIGHTS_NOT_KEPT}")
            return Item("train", "done", name, detail=detail, wall_s=summary.get("wall_s"),
                        **_rate(summary.get("tokens_per_s"), "tokens"), step=summary.get("steps"),
                        max_steps=summary.get("steps"))
        step, elapsed = self._last_logged_step(method, seed)
        checkpoints = sorted((int(p.name.split("-")[1]) for p in self.paths.checkpoints_dir(method, seed).glob("step-*")
                              if p.name.split("-")[1].isdigit()), reverse=True)
        where = f"step {step} of {max_steps}"
        resume = f"; resumes from checkpoint step-{checkpoints[0]}" if checkpoints else "; restarts from step 0"
        live = self.unfinished("train", name)
        if live is not None:
            state, reason = live
            if state == "running":
                eta = f", ~{_duration(elapsed / step * (max_steps - step))} left" if step and elapsed else ""
                return Item("train", "running", name, detail=f"{where}{eta}" + (f" {reason}" if reason else ""),
                            step=step, max_steps=max_steps)
            detail = f"{reason}; at {where}" if reason else where
            return Item("train", state, name, detail=detail + (resume if state == "interrupted" else ""),
                        step=step, max_steps=max_steps)
        log = self.paths.train_log(method, seed)
        if step and log.is_file():
            # No `prada run` record (e.g. `prada train` on its own): a log written within a few of
            # its own logging intervals is taken as a live run.
            age = max(0.0, time.time() - log.stat().st_mtime)
            interval = (elapsed / step) * max(1, log_every) if elapsed else 0.0
            if age < 3 * interval + 60:
                return Item("train", "running", name, step=step, max_steps=max_steps,
                            detail=f"{where} (log written {_duration(age)} ago; no `prada run` record)")
        if step or checkpoints or self.paths.train_dir(method, seed).is_dir():
            return Item("train", "interrupted", name, detail=f"stopped at {where}{resume}", step=step,
                        max_steps=max_steps)
        return Item("train", "pending", name, step=0, max_steps=max_steps)

    def _last_logged_step(self, method: str, seed: int) -> tuple[int, float | None]:
        log = self.paths.train_log(method, seed)
        if not log.is_file():
            return 0, None
        try:
            records = _iter_lines(log)
        except OSError:
            return 0, None
        if not records:
            return 0, None
        last = records[-1]
        return int(last.get("step", 0)), last.get("elapsed_s")

    def evaluation(self, model: str, task: str) -> Item:
        metrics = _read_metrics(self.paths.eval_metrics(model, task))
        if metrics is not None:
            return Item("eval", "done", model, task,
                        detail=f"accuracy {100 * metrics.accuracy:.1f}% ({metrics.correct}/{metrics.n})",
                        wall_s=metrics.wall_s, **_rate(metrics.tokens_per_s, "tokens"),
                        accuracy=float(metrics.accuracy))
        live = self.unfinished("eval", model, task)
        if live is not None:
            return Item("eval", live[0], model, task, detail=live[1])
        return Item("eval", "pending", model, task)

    def features(self, model: str) -> Item:
        if self.paths.features_file(model).is_file():
            return Item("features", "done", model)
        live = self.unfinished("features", model)
        if live is not None:
            return Item("features", live[0], model, detail=live[1])
        return Item("features", "pending", model)

    def report(self) -> Item:
        index = self.paths.report_index
        if index.is_file():
            inputs = [p for pattern in ("eval/*/*/metrics.json", "train/*/log.jsonl", "features/*.npz")
                      for p in self.paths.root.glob(pattern)]
            stale = inputs and max(p.stat().st_mtime for p in inputs) > index.stat().st_mtime
            return Item("report", "done", detail="older than some results: `prada report` rebuilds it" if stale else "")
        live = self.unfinished("report")
        if live is not None:
            return Item("report", live[0], detail=live[1])
        return Item("report", "pending")


def _iter_lines(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of ``path`` that parse (a torn tail is skipped, not repaired: this only reads)."""
    import json

    out = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                out.append(record)
    return out


def _duration(seconds: float) -> str:
    from prada.progress import format_duration

    return format_duration(seconds)


# --------------------------------------------------------------------------------------------
# The whole run
# --------------------------------------------------------------------------------------------


def _snapshot_steps(paths: RunPaths, name: str, grid: Grid, trained: Item) -> list[int]:
    """Snapshots ``prada run`` evaluates: those on disk or already evaluated, and while training is
    unfinished, those it will save."""
    parsed = parse_model_name(name)
    assert parsed.seed is not None  # a name of the grid: model_name(method, seed)
    found = {step for step, _ in paths.snapshots(parsed.method, parsed.seed)}
    evaluated = (parse_model_name(p.name) for p in paths.root.glob(f"eval/{name}@step-*"))
    found |= {m.snapshot_step for m in evaluated if m.run == name and m.snapshot_step is not None}
    if trained.state != "done":
        found |= set(grid.snapshot_steps)
    return sorted(found)


def inspect_run(root: str | Path) -> RunStatus:
    """The status of every item of the run directory ``root`` (reads files only)."""
    paths = RunPaths(Path(root))
    if not paths.config.is_file():
        hint = " (a sweep folder: give one of its points)" if (paths.root / "sweep.yaml").is_file() else ""
        raise RunDirError(f"{paths.root}: not a run directory: no config.yaml{hint}; give the output_dir of a "
                          "`prada run`")
    grid = read_grid(paths)
    invocation = read_invocation(paths.invocation)
    if invocation is not None and invocation.get("state") == "running" and isinstance(invocation.get("pid"), int):
        invocation = {**invocation, "alive": process_alive(invocation["pid"], invocation.get("host"),
                                                          invocation.get("process_start"))}
    inspector = _Inspector(paths, invocation)
    status = RunStatus(paths.root, grid.name, invocation)
    status.items.append(inspector.teacher())
    eval_targets = grid.eval_tasks[1:]
    if grid.zero_shot:
        status.items += [inspector.evaluation(ZERO_SHOT_MODEL, t) for t in grid.eval_tasks]
    grid_runs = [(m, s, model_name(m, s)) for s in grid.seeds for m in grid.methods]
    names = [name for _, _, name in grid_runs]
    for method, seed, name in grid_runs:
        trained = inspector.train(method, seed, grid.max_steps, grid.log_every)
        status.items.append(trained)
        status.items += [inspector.evaluation(name, t) for t in grid.eval_tasks]
        for step in _snapshot_steps(paths, name, grid, trained):
            status.items += [inspector.evaluation(model_name(method, seed, step), t) for t in eval_targets]
        if grid.features:
            status.items.append(inspector.features(name))
    status.items.append(inspector.report())
    extra = sorted(p.name for p in (paths.root / "train").glob("*-seed*") if p.is_dir() and p.name not in names)
    if extra:
        status.notes.append(f"trained outside this config's grid (not listed): {', '.join(extra)}")
    if invocation is not None and invocation.get("state") == "failed" and not any(
            i.state == "failed" and i.detail == invocation.get("error") for i in status.items):
        status.notes.append(f"the latest `prada run` failed: {invocation.get('error')}")
    return status


def describe_invocation(invocation: dict[str, Any] | None, now: float | None = None) -> str:
    """``running for 5m10s (pid 4242 on node-3), at train prada-seed0`` and the like."""
    if invocation is None:
        return "no `prada run` recorded here"
    now = time.time() if now is None else now
    state = invocation.get("state")
    since = _duration(max(0.0, now - float(invocation.get("started_at") or now)))
    ago = _duration(max(0.0, now - float(invocation.get("updated_at") or now)))
    stage = invocation.get("stage") or {}
    at = " ".join(p for p in (stage.get("stage"), stage.get("model")) if p)
    at += f" on {stage['task']}" if stage.get("task") else ""
    who = f"pid {invocation.get('pid')} on {invocation.get('host')}"
    if state == "running":
        if invocation.get("alive") is False:
            return f"killed or lost: {who} is gone (it was at {at or 'start-up'}, last update {ago} ago)"
        return f"running for {since} ({who}), at {at or 'start-up'}"
    if state == "finished":
        return f"finished {ago} ago"
    return f"{state} {ago} ago at {at or 'start-up'}: {invocation.get('error')}"
