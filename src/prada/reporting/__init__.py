"""Reports from run directories: tables, figures and one static HTML page.

``build_report(run_dirs, out_dir)`` reads only files (see ``prada.reporting.collect`` for the
layout) and writes ``table.md``, ``table.csv``, ``accuracy_vs_steps.png``, ``tsne.png``,
``training_curves.png``, ``pad.png`` and ``index.html`` into ``out_dir``. Missing inputs become
notes in the report, never a crash.
"""

from __future__ import annotations

import logging
from pathlib import Path

from prada.config import ReportConfig
from prada.io import write_text_atomic
from prada.progress import Progress, silent
from prada.reporting.collect import ReportData, collect, parse_model_name, snapshot_model_name
from prada.reporting.stats import bootstrap_ci, mean_std, proxy_a_distance

logger = logging.getLogger(__name__)

__all__ = [
    "build_report",
    "collect",
    "ReportData",
    "parse_model_name",
    "snapshot_model_name",
    "bootstrap_ci",
    "mean_std",
    "proxy_a_distance",
]


def build_report(run_dirs: list[Path], out_dir: Path, report_cfg: ReportConfig | None = None,
                 progress: Progress | None = None) -> Path:
    """Build the report of one or more run dirs (merged) into ``out_dir``; returns ``index.html``.

    ``report_cfg`` defaults to the ``report`` section of the first run dir's ``config.yaml``.
    ``progress`` shows the parts done (``prada.progress``; default: silent).
    """
    from prada.reporting import plots
    from prada.reporting.html import render_html
    from prada.reporting.tables import build_tables, to_csv, to_markdown

    out_dir = Path(out_dir)
    data: ReportData = collect([Path(d) for d in run_dirs])
    if report_cfg is not None:
        data.report_cfg = report_cfg
    # Parts: tables, each figure (t-SNE is the slow one), the page.
    stage = (progress or silent()).stage("report", 2 + (4 if data.report_cfg.plots else 0), "parts")
    tables = build_tables(data)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / "table.md", "# Results\n\n" + to_markdown(tables, data))
    write_text_atomic(out_dir / "table.csv", to_csv(tables))
    stage.advance(1)
    figures: list[Path] = []
    if data.report_cfg.plots:
        for make in (
            lambda: plots.plot_accuracy_vs_steps(data, out_dir / "accuracy_vs_steps.png"),
            lambda: plots.plot_tsne(data, out_dir / "tsne.png"),
            lambda: plots.plot_training_curves(data, out_dir / "training_curves.png"),
            lambda: plots.plot_pad(data, tables, out_dir / "pad.png"),
        ):
            path = make()
            stage.advance(1)
            if path is not None:
                figures.append(path)
    else:
        data.note("plots disabled (report.plots: false)")
    index = out_dir / "index.html"
    write_text_atomic(index, render_html(data, tables, figures))
    stage.advance(1)
    stage.close(str(index))
    logger.info("report written to %s", index)
    return index
