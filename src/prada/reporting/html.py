"""One static ``index.html``: the tables, the figures (embedded as base64, so the page is a single
portable file), the notes about missing pieces, and per-run training summaries."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from prada.reporting.collect import ReportData
from prada.reporting.tables import TRAINING_HEADER, Tables, html_table, to_html, training_rows

_CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 2rem auto; max-width: 1200px;
       color: #222; line-height: 1.45; padding: 0 1rem; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.6rem 0; font-size: 0.92rem; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #f3f3f3; }
.caption { color: #555; font-size: 0.85rem; max-width: 60rem; }
.notes li { color: #8a5300; }
figure { margin: 1rem 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.85rem; }
code { background: #f5f5f5; padding: 0 0.2rem; }
"""

FIGURE_CAPTIONS = {
    "accuracy_vs_steps.png": "Target accuracy vs optimizer step (snapshot evaluations). The shaded band "
    "spans FT-CoT to PRADA: green where PRADA is ahead, grey where it is behind (cf. the paper's Fig. 6).",
    "tsne.png": "t-SNE of last-layer hidden states mean-pooled over question tokens, for source and "
    "target test questions, without (left) and with PRADA (right) (cf. Fig. 5).",
    "training_curves.png": "Per-step training log: task loss L_y, domain loss L_d, domain-classifier "
    "accuracy and the gradient-reversal coefficient λ.",
    "pad.png": "Proxy A-distance between source and each target's pooled features (lower = domain-invariant).",
}


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"<img alt='{html.escape(path.name)}' src='data:image/png;base64,{data}'>"


def _training_table(data: ReportData) -> str:
    rows = training_rows(data)
    if not rows:
        return "<p>No training runs found.</p>"
    return html_table(TRAINING_HEADER, rows)


def render_html(data: ReportData, tables: Tables, figures: list[Path], title: str = "PRADA report") -> str:
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        "<p>Run directories: " + ", ".join(f"<code>{html.escape(str(d))}</code>" for d in data.run_dirs) + "</p>",
        f"<p>Source: <b>{html.escape(str(data.source))}</b>; targets: "
        f"{html.escape(', '.join(data.targets) or '—')}.</p>",
    ]
    if data.notes:
        parts.append("<h2>Notes</h2><ul class='notes'>" + "".join(f"<li>{html.escape(n)}</li>" for n in data.notes) + "</ul>")
    parts += ["<h2>Accuracy</h2>", to_html(tables) if tables.cells else "<p>No evaluations found.</p>"]
    parts.append("<h2>Figures</h2>")
    for fig in figures:
        caption = FIGURE_CAPTIONS.get(fig.name, fig.name)
        parts.append(f"<figure>{_img(fig)}<figcaption>{html.escape(caption)}</figcaption></figure>")
    if not figures:
        parts.append("<p>No figures (see the notes).</p>")
    parts += ["<h2>Training runs</h2>", _training_table(data), "</body></html>"]
    return "\n".join(parts) + "\n"
