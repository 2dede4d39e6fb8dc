"""Proxy A-distance over many random splits, for comparing runs whose single-split PADs are close.

The report's PAD uses one 50/50 split (seed 0); with ~120-200 questions per domain its split-to-split
standard deviation is ~0.05-0.1. This script recomputes it for each run directory's features over
``--splits`` seeds and prints mean ± std per target, plus their mean:

    python scripts/pad_over_splits.py results/multiarith_adversary/lambda_* --splits 20

Reads the run directories as `prada report` does (``prada.reporting.collect``: features loaded
with allow_pickle=False, source and targets from each ``config.yaml``).
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from prada.reporting.collect import collect
from prada.reporting.stats import proxy_a_distance


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="run directories (with features/ and config.yaml)")
    ap.add_argument("--splits", type=int, default=20)
    args = ap.parse_args()
    for run in args.runs:
        data = collect([run])
        for record in data.features:
            feats = record.features
            per_target = {t: [proxy_a_distance(feats[data.source], feats[t], seed=s).pad for s in range(args.splits)]
                          for t in data.targets}
            means = [statistics.mean(v) for v in per_target.values()]
            cells = "  ".join(f"{t} {statistics.mean(v):.3f} ± {statistics.stdev(v):.3f}" for t, v in per_target.items())
            print(f"{run.name}/{record.path.stem}: {cells}  | mean {statistics.mean(means):.3f}")


if __name__ == "__main__":
    main()
