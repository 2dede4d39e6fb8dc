"""``prada run`` and ``prada sweep``: the CLI of the experiment library functions.

The library (``prada.runner.run_experiment``, ``prada.sweep.run_sweep``) knows nothing of the
terminal: it reports through ``RunEvents``; here ``ConsoleEvents`` prints them with rich, like every
stage's own ``commands.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

console = Console()


class ConsoleEvents:
    """``prada.runner.RunEvents`` printed on the terminal: a rule per stage, finished stages dimmed."""

    def stage(self, title: str) -> None:
        from rich.markup import escape

        console.rule(escape(title))

    def note(self, text: str, *, skipped: bool = False) -> None:
        console.print(text, style="dim" if skipped else None, markup=False)

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], *,
              right_from: int | None = None) -> None:
        table = Table(title=title)
        for i, column in enumerate(columns):
            table.add_column(column, justify="right" if right_from is not None and i >= right_from else "left")
        for row in rows:
            table.add_row(*row)
        console.print(table)


def run_command(
    config: Path = typer.Argument(..., help="Experiment YAML (see configs/)."),
    overrides: list[str] = typer.Argument(None, help="Dotted overrides, e.g. train.lr=1e-4"),
    no_report: bool = typer.Option(False, "--no-report", help="Skip building the report."),
) -> None:
    """Run an experiment end to end: teacher, training, evaluation, report.

    Re-running skips finished stages and resumes interrupted training.

    Examples:

      prada run configs/quickstart.yaml

      prada run configs/experiments/multiarith.yaml --  seeds=[0,1] data.data_dir=../shared/data
    """
    from prada.config import load_config
    from prada.progress import from_cli
    from prada.runner import run_experiment

    cfg = load_config(config, overrides or [])
    with from_cli() as progress:
        run_experiment(cfg, report=not no_report, progress=progress, events=ConsoleEvents())


def sweep_command(
    config: Path = typer.Argument(..., help="Experiment YAML; data.val_fraction must be > 0."),
    overrides: list[str] = typer.Argument(None, help="Dotted overrides shared by every point."),
    param: list[str] = typer.Option(..., "--param", help="KEY=V1,V2,... (repeat for a grid)."),
) -> None:
    """Choose hyper-parameters on the source's validation split (never on targets or test sets).

    Examples:

      prada sweep configs/experiments/multiarith_val.yaml --param train.lr=5e-5,1e-4,2e-4

      prada sweep CONFIG --param adversarial.lambda_max=0.03,0.1,0.3 'methods=\\[prada]'
    """
    from prada.progress import from_cli
    from prada.sweep import run_sweep

    with from_cli() as progress:
        run_sweep(config, param, overrides or [], progress=progress, events=ConsoleEvents())


def register(app: typer.Typer) -> None:
    app.command("run")(run_command)
    app.command("sweep")(sweep_command)
