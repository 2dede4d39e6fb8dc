"""The sweep as a library function (``run_sweep``; the ``prada sweep`` CLI is in ``prada.commands``):
choose hyper-parameters on a validation split carved from the source's train data.

Each point of the grid is an ordinary run directory (``OUTPUT_DIR/<key>_<value>...``) trained on
the source's train split minus ``data.val_fraction`` and evaluated on that held-out ``val`` split of
the source only, so the choice never sees a target label or any test set. The points are cached
like any run: re-running the sweep redoes nothing and rewrites ``sweep.md``/``sweep.csv`` the same.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from prada.config import RunConfig, load_config
from prada.errors import ConfigError
from prada.eval_metrics import EvalMetrics
from prada.io import write_text_atomic
from prada.paths import RunPaths
from prada.progress import Progress, silent

if TYPE_CHECKING:
    from prada.runner import RunEvents

SWEEP_HEADER = ["point", "method", "seeds", "n", "val accuracy (%)", "best"]


_SLUG_UNSAFE = re.compile(r"[/\\\x00]")


@dataclass(frozen=True)
class SweepPoint:
    """One assignment of the swept keys, e.g. ``{"train.lr": "5e-5"}`` (values as typed)."""

    values: tuple[tuple[str, str], ...]

    @property
    def overrides(self) -> list[str]:
        return [f"{key}={value}" for key, value in self.values]

    @property
    def slug(self) -> str:
        """Folder name of the point: ``lr_5e-5`` for ``train.lr=5e-5``. A character that could leave
        the sweep's folder (``/``, ``\\``) becomes ``-``: ``model_-models-a`` for ``/models/a``."""
        return "-".join(f"{key.rsplit('.', 1)[-1]}_{_SLUG_UNSAFE.sub('-', value)}" for key, value in self.values)

    @property
    def label(self) -> str:
        return ", ".join(self.overrides)


def parse_grid(params: list[str]) -> list[SweepPoint]:
    """``["train.lr=5e-5,1e-4", "adversarial.lambda_max=0.1"]`` -> the cartesian product."""
    axes: list[list[tuple[str, str]]] = []
    for param in params:
        key, sep, values_text = param.partition("=")
        values = [v.strip() for v in values_text.split(",") if v.strip()]
        if not sep or not key.strip() or not values:
            raise ConfigError(f"--param '{param}': expected KEY=V1,V2,... e.g. --param train.lr=5e-5,1e-4")
        if len(set(values)) != len(values):
            raise ConfigError(f"--param '{param}': a value is repeated")
        axes.append([(key.strip(), v) for v in values])
    if not axes:
        raise ConfigError("prada sweep: give at least one --param KEY=V1,V2,...")
    keys = [axis[0][0] for axis in axes]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"prada sweep: a key is swept twice in {keys}")
    points = [SweepPoint(tuple(combo)) for combo in itertools.product(*axes)]
    slugs = [p.slug for p in points]
    if len(set(slugs)) != len(slugs):
        raise ConfigError(f"prada sweep: two points would share a folder ({sorted(slugs)}); use values that "
                          "differ in more than '/' or '\\'")
    return points


def point_config(config_path: Path, overrides: list[str], point: SweepPoint, root: Path) -> RunConfig:
    """The run config of one point: the point's values, its own folder, the source's val split."""
    forced = [f"output_dir={root / point.slug}", "eval.split=val", "eval.tasks=source",
              "eval.zero_shot_baseline=false"]
    return load_config(config_path, [*overrides, *point.overrides, *forced])


def val_accuracy(run_dir: Path, method: str, seeds: Sequence[int], source: str) -> tuple[float, int] | None:
    """Mean val accuracy over seeds (and the val size), or None while a seed is missing."""
    accuracies, sizes = [], set()
    paths = RunPaths(run_dir)
    for seed in seeds:
        metrics_path = paths.eval_dir(paths.train_dir(method, seed).name, source) / "metrics.json"
        if not metrics_path.exists():
            return None
        metrics = EvalMetrics.read(metrics_path)
        accuracies.append(metrics.accuracy)
        sizes.add(metrics.n)
    return statistics.fmean(accuracies), max(sizes)


def best_marks(means: list[float | None]) -> list[str]:
    """``"yes"`` on the single highest mean; ``"tie"`` on each when several share it.

    A tie is left for the reader to break (e.g. by keeping the untuned default): the sweep does not
    pretend the grid's order is evidence.

    >>> best_marks([0.1, 0.3, None, 0.2]), best_marks([0.3, 0.1, 0.3])
    (['', 'yes', '', ''], ['tie', '', 'tie'])
    """
    scored = [m for m in means if m is not None]
    if not scored:
        return [""] * len(means)
    top = max(scored)
    mark = "yes" if scored.count(top) == 1 else "tie"
    return [mark if m is not None and m == top else "" for m in means]


def sweep_rows(root: Path, points: list[SweepPoint], cfg: RunConfig) -> list[list[str]]:
    """One row per point × method; ``best`` marks each method's highest mean (see ``best_marks``)."""
    rows: list[list[str]] = []
    for method in cfg.methods:
        scores = [val_accuracy(root / p.slug, method, cfg.seeds, cfg.data.source) for p in points]
        marks = best_marks([None if s is None else s[0] for s in scores])
        for point, score, mark in zip(points, scores, marks, strict=True):
            rows.append([
                point.label, method, ",".join(map(str, cfg.seeds)),
                "-" if score is None else str(score[1]),
                "-" if score is None else f"{100 * score[0]:.1f}",
                mark,
            ])
    return rows


def write_sweep_tables(root: Path, rows: list[list[str]], source: str, val_fraction: float) -> None:
    from prada.reporting.tables import md_table  # not at import: `prada --help` stays fast

    lines = [
        f"# Validation sweep on {source} (val = {val_fraction:g} of its train split, seeded)",
        "",
        md_table(SWEEP_HEADER, rows),
        "",
        "Each point trains on the source's train split minus val and is scored on val only.",
        "",
    ]
    write_text_atomic(root / "sweep.md", "\n".join(lines))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SWEEP_HEADER)
    writer.writerows(rows)
    write_text_atomic(root / "sweep.csv", buffer.getvalue())


def run_sweep(config_path: Path, params: list[str], overrides: list[str], progress: Progress | None = None,
              events: RunEvents | None = None) -> Path:
    """Run every point of the grid (resuming finished ones) and write the sweep tables.

    ``progress`` shows points done beside each point's own stages (``prada.progress``); ``events``
    receives what the points' runs tell (default: the log)."""
    from prada.runner import LogEvents, run_experiment

    events = events or LogEvents()
    points = parse_grid(params)
    base = load_config(config_path, overrides)
    if base.data.val_fraction <= 0:
        raise ConfigError(
            f"{config_path}: data.val_fraction is {base.data.val_fraction}; a sweep scores its points on "
            "a validation split carved from the source's train data, e.g. data.val_fraction=0.1"
        )
    root = Path(base.output_dir)
    root.mkdir(parents=True, exist_ok=True)
    write_text_atomic(root / "sweep.yaml", yaml.safe_dump({"config": str(config_path), "params": params,
                                                           "overrides": overrides}, sort_keys=False))
    progress = progress or silent()
    with progress.stage(f"sweep {base.name}", len(points), "points") as stage:
        for i, point in enumerate(points, 1):
            events.stage(f"sweep point {i}/{len(points)}: {point.label}")
            run_experiment(point_config(config_path, overrides, point, root), report=False, progress=progress,
                           events=events)
            stage.advance(1)

    rows = sweep_rows(root, points, base)
    write_sweep_tables(root, rows, base.data.source, base.data.val_fraction)
    events.table(f"{base.name}: {base.data.source} val accuracy (%)", SWEEP_HEADER, rows)
    events.note(f"sweep: {root / 'sweep.md'}")
    return root
