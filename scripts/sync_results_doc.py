"""Paste each run's ``report/table.md`` into ``docs/results.md`` between its markers.

    <!-- report: results/coin_flip -->
    ...generated; do not edit...
    <!-- /report -->

``python scripts/sync_results_doc.py`` rewrites the blocks; ``--check`` exits 1 when one is stale
(the test suite runs the check, so the page can never drift from the committed results).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "results.md"
BLOCK = re.compile(r"(<!-- report: (?P<run>\S+) -->\n)(?P<body>.*?)(<!-- /report -->)", re.S)


def rendered(run: str, root: Path = ROOT) -> str:
    """The run's table.md without its title, sections demoted to level 4 (under a setting)."""
    table = (root / run / "report" / "table.md").read_text(encoding="utf-8")
    table = re.sub(r"\A# [^\n]*\n+", "", table)
    return re.sub(r"^## ", "#### ", table, flags=re.M).strip() + "\n"


def sync(text: str, root: Path = ROOT) -> str:
    return BLOCK.sub(lambda m: m.group(1) + rendered(m.group("run"), root) + m.group(4), text)


def stale_runs(text: str, root: Path = ROOT) -> list[str]:
    return [m.group("run") for m in BLOCK.finditer(text) if m.group("body") != rendered(m.group("run"), root)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a block is out of date")
    args = parser.parse_args(argv)
    text = DOC.read_text(encoding="utf-8")
    if not BLOCK.search(text):
        print(f"{DOC}: no '<!-- report: ... -->' block", file=sys.stderr)
        return 1
    if args.check:
        stale = stale_runs(text)
        if stale:
            print(f"{DOC}: out of date for {stale}; run python scripts/sync_results_doc.py", file=sys.stderr)
        return 1 if stale else 0
    DOC.write_text(sync(text), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
