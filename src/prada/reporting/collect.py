"""Read everything the report needs from run directories — files only, no models.

Layout read (see ``docs/reporting.md``)::

    RUN_DIR/config.yaml                              data.source / data.targets, report settings
    RUN_DIR/eval/{model}/{task}/metrics.json         one evaluation (+ predictions.jsonl beside it)
    RUN_DIR/train/{method}-seed{seed}/log.jsonl      per-step training log (+ summary.json)
    RUN_DIR/features/{model}.npz                     pooled question features, one array per domain

``{model}`` names are ``{method}-seed{seed}`` for a trained student's final weights,
``{method}-seed{seed}@step-{N}`` for a snapshot taken at optimizer step N, and any other name
(e.g. ``zero_shot_cot`` for the untrained base model) for a model without seed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from prada.config import ReportConfig
from prada.errors import DataError, RunDirError
from prada.eval_metrics import EvalMetrics
from prada.io import read_json, read_jsonl
from prada.paths import ModelName, model_name, parse_model_name, read_run_config
from prada.reporting.stats import QuestionOutcomes

logger = logging.getLogger(__name__)

def snapshot_model_name(method: str, seed: int, step: int) -> str:
    """The eval/feature name of a snapshot: ``snapshot_model_name("prada", 0, 40) == "prada-seed0@step-40"``."""
    return model_name(method, seed, step)


@dataclass
class EvalRecord:
    run_dir: Path
    model: ModelName
    task: str
    metrics: EvalMetrics
    ids: list[str] | None = None
    """Question ids in file order (None when the evaluation kept no per-question outcomes)."""
    correct: np.ndarray | None = None
    """0/1 per question, aligned with ``ids`` (None with ``ids``)."""

    @property
    def accuracy(self) -> float:
        return float(self.metrics.accuracy)

    @property
    def n(self) -> int:
        return self.metrics.n

    @property
    def step(self) -> int | None:
        """Training step of the evaluated weights (snapshot name, else metrics' ``step``)."""
        if self.model.snapshot_step is not None:
            return self.model.snapshot_step
        return self.metrics.step

    @property
    def label(self) -> str:
        """``{model}/{task}``, as in the eval folder: names the evaluation in messages."""
        return f"{self.model}/{self.task}"

    def outcomes(self) -> QuestionOutcomes | None:
        """Per-question 0/1 outcomes keyed by question id; None when the evaluation kept none (then
        only the counts in ``metrics.json`` are known: no outcome vector is made up from them)."""
        if self.ids is None or self.correct is None:
            return None
        return QuestionOutcomes(self.label, tuple(self.ids), self.correct)


@dataclass
class TrainRecord:
    run_dir: Path
    method: str
    seed: int | None
    log: list[dict[str, Any]]
    summary: dict[str, Any] | None
    source_share: float | None = None
    """Source questions / all questions the domain classifier sees per step (its majority-class
    accuracy), from the run's ``config.yaml``; None when unknown."""


@dataclass
class FeatureRecord:
    run_dir: Path
    model: ModelName
    path: Path
    features: dict[str, np.ndarray]


@dataclass
class ReportData:
    run_dirs: list[Path]
    source: str | None = None
    targets: list[str] = field(default_factory=list)
    evals: list[EvalRecord] = field(default_factory=list)
    trains: list[TrainRecord] = field(default_factory=list)
    features: list[FeatureRecord] = field(default_factory=list)
    report_cfg: ReportConfig = field(default_factory=ReportConfig)
    notes: list[str] = field(default_factory=list)
    """Human-readable remarks about missing or inconsistent pieces (shown in the report)."""
    unreadable: list[str] = field(default_factory=list)
    """``model (file: why)`` for every file that exists but cannot be read: the report is refused
    rather than built without that model."""

    def note(self, text: str) -> None:
        logger.warning("report: %s", text)
        if text not in self.notes:
            self.notes.append(text)

    @property
    def final_evals(self) -> list[EvalRecord]:
        return [e for e in self.evals if e.model.snapshot_step is None]

    def role(self, task: str) -> str:
        if task == self.source:
            return "source"
        if task in self.targets:
            return "target"
        return "other"

    def tasks(self) -> list[str]:
        """Source, then targets in config order, then any other evaluated task (sorted)."""
        seen = {e.task for e in self.evals}
        ordered = [t for t in [self.source, *self.targets] if t and t in seen]
        return ordered + sorted(seen - set(ordered))


def _read_config(run_dir: Path, data: ReportData, first: bool) -> None:
    path = run_dir / "config.yaml"
    if not path.is_file():
        data.note(f"{run_dir}: no config.yaml; source/target roles come from other run dirs or are unknown")
        return
    raw = read_run_config(path)
    data_section = raw.get("data") or {}
    source = data_section.get("source")
    targets = list(data_section.get("targets") or [])
    if data.source is None:
        data.source = source
    elif source and source != data.source:
        data.note(f"{run_dir}: source '{source}' differs from '{data.source}' of an earlier run dir; using '{data.source}'")
    for t in targets:
        if t not in data.targets:
            data.targets.append(t)
    report_section = raw.get("report")
    if first and isinstance(report_section, dict):
        known = {k: v for k, v in report_section.items() if k in ReportConfig.__dataclass_fields__}
        try:
            data.report_cfg = ReportConfig(**known)
        except TypeError:  # pragma: no cover - defensive
            data.note(f"{path}: ignoring an unreadable report section")


def _read_predictions(path: Path, data: ReportData) -> tuple[list[str] | None, np.ndarray | None]:
    if not path.is_file():
        data.note(f"{path.parent}: no per-question outcomes (no predictions.jsonl, no 'per_question' in "
                  "metrics.json): its accuracy interval comes from the counts, and it gets no paired interval")
        return None, None
    records = read_jsonl(path, tolerate_torn_tail=True)
    ids = [str(r.get("id", i)) for i, r in enumerate(records)]
    correct = np.array([1.0 if r.get("correct") else 0.0 for r in records])
    return ids, correct


def _read_evals(run_dir: Path, data: ReportData, seen: dict[tuple[str, str], Path]) -> None:
    eval_root = run_dir / "eval"
    if not eval_root.is_dir():
        data.note(f"{run_dir}: no eval/ directory")
        return
    for metrics_path in sorted(eval_root.glob("*/*/metrics.json")):
        model_dir, task = metrics_path.parent.parent.name, metrics_path.parent.name
        try:
            metrics = EvalMetrics.read(metrics_path)
        except (DataError, RunDirError) as e:
            data.unreadable.append(f"{model_dir} on {task} ({e})")
            continue
        key = (model_dir, task)
        if key in seen:
            data.note(f"{metrics_path}: {model_dir}/{task} also in {seen[key]}; keeping the first")
            continue
        seen[key] = run_dir
        per_question = metrics.per_question
        ids: list[str] | None
        correct: np.ndarray | None
        if per_question is not None and len(per_question.correct) == len(per_question.ids) == metrics.n:
            ids = [str(i) for i in per_question.ids]
            correct = np.array(per_question.correct, dtype=float)
        else:
            ids, correct = _read_predictions(metrics_path.parent / "predictions.jsonl", data)
        if correct is not None and len(correct) != metrics.n:
            data.note(f"{metrics_path.parent}: predictions.jsonl has {len(correct)} lines but n={metrics.n}; "
                      "using the counts only (no paired interval)")
            ids, correct = None, None
        if ids is not None and len(set(ids)) != len(ids):
            data.note(f"{metrics_path.parent}: duplicate question ids in its per-question outcomes; "
                      "using the counts only (no paired interval)")
            ids, correct = None, None
        data.evals.append(EvalRecord(run_dir, parse_model_name(model_dir), task, metrics, ids, correct))


def _read_trains(run_dir: Path, data: ReportData) -> None:
    for log_path in sorted((run_dir / "train").glob("*/log.jsonl")):
        name = parse_model_name(log_path.parent.name)
        summary_path = log_path.parent / "summary.json"
        try:
            log = read_jsonl(log_path, tolerate_torn_tail=True)
            summary = read_json(summary_path) if summary_path.is_file() else None
        except DataError as e:
            data.unreadable.append(f"{log_path.parent.name} (training log: {e})")
            continue
        data.trains.append(TrainRecord(run_dir, name.method, name.seed, log, summary,
                                       _source_share(log_path.parent / "config.yaml")))


def _source_share(config_path: Path) -> float | None:
    try:
        raw = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
        source = int(raw["train"]["batch_size"])
        target = raw["adversarial"].get("target_batch_size")
        target = source if target is None else int(target)
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError, AttributeError):
        return None
    return source / (source + target) if source + target > 0 else None


def _read_features(run_dir: Path, data: ReportData) -> None:
    for path in sorted((run_dir / "features").glob("*.npz")):
        try:
            with np.load(path, allow_pickle=False) as npz:
                feats = {k: np.asarray(npz[k]) for k in npz.files}
        except Exception as e:  # noqa: BLE001 - a truncated zip, a bad header, a pickled array: all unreadable
            data.unreadable.append(f"{path.stem} (features: {path}: {type(e).__name__}: {e})")
            continue
        data.features.append(FeatureRecord(run_dir, parse_model_name(path.stem), path, feats))


def collect(run_dirs: list[Path]) -> ReportData:
    """Read every run dir; several dirs merge (e.g. one per seed). Missing pieces become notes."""
    if not run_dirs:
        raise RunDirError("no run directory given")
    data = ReportData(run_dirs=[Path(d) for d in run_dirs])
    seen: dict[tuple[str, str], Path] = {}
    for i, run_dir in enumerate(data.run_dirs):
        if not run_dir.is_dir():
            raise RunDirError(f"{run_dir}: run directory not found")
        _read_config(run_dir, data, first=i == 0)
        _read_evals(run_dir, data, seen)
        _read_trains(run_dir, data)
        _read_features(run_dir, data)
    if data.unreadable:
        raise RunDirError(
            f"could not read {len(data.unreadable)} model file(s): {'; '.join(data.unreadable)}. Restore or "
            "delete them (prada run re-creates a deleted metrics.json, training log or features file), then "
            "build the report again; nothing was written"
        )
    if not data.evals:
        where = ", ".join(str(d) for d in data.run_dirs)
        raise RunDirError(f"{where}: no evaluations to report (no eval/MODEL/TASK/metrics.json); is this a run "
                          "directory? Run `prada run CONFIG.yaml` first, or pass the folder it wrote")
    return data
