"""docs/architecture.md names only modules that exist, and every package of src/prada."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_module_map_matches_the_source_tree():
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    block = doc.split("```\nsrc/prada/", 1)[1].split("```", 1)[0]
    package = ROOT / "src" / "prada"
    files = {p.name for p in package.rglob("*.py")}
    named = set(re.findall(r"\b(\w+\.py)\b", block))
    assert named and named <= files, sorted(named - files)
    packages = {p.parent.name for p in package.glob("*/__init__.py")}
    shown = set(re.findall(r"^  (\w+)/", block, re.M))
    assert packages == shown, (sorted(packages - shown), sorted(shown - packages))
