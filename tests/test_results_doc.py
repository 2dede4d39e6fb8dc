"""docs/results.md quotes the committed reports verbatim (scripts/sync_results_doc.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("sync_results_doc", ROOT / "scripts" / "sync_results_doc.py")
sync_doc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sync_doc)  # type: ignore[union-attr]


def test_results_page_quotes_every_committed_report_as_is():
    text = (ROOT / "docs" / "results.md").read_text(encoding="utf-8")
    runs = [m.group("run") for m in sync_doc.BLOCK.finditer(text)]
    assert "results/multiarith" in runs and "results/coin_flip" in runs
    assert sync_doc.stale_runs(text) == []


def test_a_stale_block_is_found_and_rewritten(tmp_path):
    report = tmp_path / "results" / "x" / "report"
    report.mkdir(parents=True)
    (report / "table.md").write_text("# Results\n\n## Accuracy\n\n| a |\n|---|\n| 1 |\n")
    doc = "intro\n<!-- report: results/x -->\n#### Accuracy\n\n| a |\n|---|\n| 0 |\n<!-- /report -->\nend\n"
    assert sync_doc.stale_runs(doc, tmp_path) == ["results/x"]
    fixed = sync_doc.sync(doc, tmp_path)
    assert fixed == "intro\n<!-- report: results/x -->\n#### Accuracy\n\n| a |\n|---|\n| 1 |\n<!-- /report -->\nend\n"
    assert sync_doc.stale_runs(fixed, tmp_path) == []
