"""``prada report``: tables, figures and an HTML page from one or more run directories."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def report(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run directories; several merge (e.g. one per seed).")],
    out: Annotated[Path | None, typer.Option("--out", help="Output folder (default: FIRST_RUN_DIR/report).")] = None,
) -> None:
    """Build table.md/.csv, the PNG figures and index.html from run directories (files only).

    Examples:

        prada report runs/gsm8k-arith

        prada report runs/seed0 runs/seed1 runs/seed2 --out reports/arith
    """
    from prada.progress import from_cli
    from prada.reporting import build_report

    out_dir = out if out is not None else Path(run_dirs[0]) / "report"
    with from_cli() as progress:
        index = build_report(list(run_dirs), out_dir, progress=progress)
    typer.echo(f"report: {index}")
    table = out_dir / "table.md"
    if table.is_file():
        typer.echo(table.read_text(encoding="utf-8"))


def register(app: typer.Typer) -> None:
    app.command("report")(report)
