"""``prada status RUN_DIR``: a table of where a run directory stands (``--json`` for scripts)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Annotated

import typer

from prada.status import WEIGHTS_NOT_KEPT, Item, RunStatus, describe_invocation, inspect_run

STYLES = {"done": "green", "running": "bold cyan", "interrupted": "yellow", "failed": "bold red", "pending": "dim"}


def _duration(seconds: float | None) -> str:
    from prada.progress import format_duration

    return format_duration(float(seconds)) if seconds is not None else ""


def cell(item: Item | None) -> str:
    """A short table cell (rich markup): ``done 40 steps · 4m51s · 149 tokens/s``, ``61.5% · 31s``,
    ``running 12/40, ~2m left``, ``interrupted at 12/40``."""
    from rich.markup import escape

    from prada.progress import format_rate

    if item is None:
        return "-"
    state = f"[{STYLES[item.state]}]{item.state}[/]"
    if item.state == "done":
        if item.stage == "eval" and item.accuracy is not None:
            state = f"[green]{100 * item.accuracy:.1f}%[/]"
        elif item.stage == "train" and WEIGHTS_NOT_KEPT in item.detail:
            state += "*"
        throughput = f"{format_rate(item.throughput)} tok/s" if item.throughput and item.stage == "train" else None
        return " · ".join([state, *(escape(e) for e in (_duration(item.wall_s), throughput) if e)])
    if item.stage == "train" and item.state in ("running", "interrupted") and item.max_steps:
        at = f"{item.step or 0}/{item.max_steps}"
        eta = item.detail.split(", ~", 1)[1].split(" ")[0] if ", ~" in item.detail else ""
        return f"{state} {'at ' if item.state == 'interrupted' else ''}{at}" + (f", ~{eta} left" if eta else "")
    return state


def _totals(status: RunStatus) -> str:
    """``train 1h02m (149-204 tokens/s) · eval 25m10s`` over the finished items."""
    parts = []
    for stage in ("teacher", "train", "eval"):
        done = [i for i in status.items if i.stage == stage and i.state == "done" and i.wall_s is not None]
        if not done:
            continue
        text = f"{stage} {_duration(sum(float(i.wall_s or 0.0) for i in done))}"
        rates = [i.throughput for i in done if i.throughput]
        if rates and stage != "teacher":
            text += f" (median {statistics.median(rates):.0f} {done[0].throughput_unit}/s)"
        parts.append(text)
    return " · ".join(parts) or "-"


def render(status: RunStatus) -> list[object]:
    """The rich renderables of ``prada status``: a header, the grid table, failures, what is left."""
    from rich.markup import escape
    from rich.table import Table

    out: list[object] = [f"[bold]{escape(status.name or '?')}[/] ({escape(str(status.root))}): "
                         f"{escape(describe_invocation(status.invocation))}"]
    by_stage: dict[str, list[Item]] = {}
    for item in status.items:
        by_stage.setdefault(item.stage, []).append(item)
    teacher = by_stage["teacher"][0]
    out.append(f"teacher: {cell(teacher)}" + (f" ({escape(teacher.detail)})" if teacher.state == "done" else ""))

    def main_model(i: Item) -> bool:
        return bool(i.model) and "@step-" not in (i.model or "")

    models = list(dict.fromkeys(i.model for i in status.items if i.stage in ("train", "eval") and main_model(i)))
    tasks = list(dict.fromkeys(i.task for i in status.items if i.stage == "eval" and main_model(i)))
    table = Table()
    table.add_column("model", no_wrap=True)
    table.add_column("train")
    for task in tasks:
        table.add_column(f"eval {task}")
    table.add_column("snapshot evals")
    table.add_column("features")
    for model in models:
        train = next((i for i in by_stage.get("train", []) if i.model == model), None)
        evals = {i.task: i for i in by_stage.get("eval", []) if i.model == model}
        snapshots = [i for i in by_stage.get("eval", []) if (i.model or "").startswith(f"{model}@step-")]
        features = next((i for i in by_stage.get("features", []) if i.model == model), None)
        done = sum(i.state == "done" for i in snapshots)
        table.add_row(escape(model or ""), cell(train), *[cell(evals.get(t)) for t in tasks],
                      f"{done}/{len(snapshots)} done" if snapshots else "-", cell(features))
    out.append(table)
    if any(WEIGHTS_NOT_KEPT in i.detail for i in by_stage.get("train", [])):
        out.append(f"[dim]* {WEIGHTS_NOT_KEPT} (a results folder): its evaluations and features are kept[/]")
    report = by_stage["report"][0]
    out.append(f"report: {cell(report)}" + (f" ({escape(report.detail)})" if report.detail else ""))
    for item in status.items:
        if item.state in ("failed", "interrupted", "running") and item.detail:
            out.append(f"[{STYLES[item.state]}]{item.state}[/] {escape(item.label)}: {escape(item.detail)}")
    for note in status.notes:
        out.append(f"[yellow]note:[/] {escape(note)}")
    out.append(f"wall time: {escape(_totals(status))}")
    out.append(f"left to run: {escape(status.left_summary())}")
    return out


def status(
    run_dir: Annotated[Path, typer.Argument(help="A run directory (the output_dir of `prada run`).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object (for scripts) instead of tables.")] = False,
) -> None:
    """Where a run stands, from its files: what is done, running, interrupted, failed or left.

    One row per method x seed: training (done / running at step k of N / interrupted / failed with
    its reason / pending), each evaluation, features; wall times and throughput from the summaries;
    what is left to run. Reads files only: safe beside a run in progress.

    Examples:

        prada status runs/quickstart

        prada status results/gsm8k --json | jq .left_summary
    """
    result = inspect_run(run_dir)
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2, default=str))
        return
    from rich.console import Console

    console = Console(highlight=False)
    if not console.is_terminal:  # a log file or a pipe: no terminal width to fit, keep cells whole
        console.width = max(console.width, 160)
    for renderable in render(result):
        console.print(renderable)


def register(app: typer.Typer) -> None:
    app.command("status")(status)
