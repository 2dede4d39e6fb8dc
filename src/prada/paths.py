"""The run directory: the only way stages talk to each other.

    RUN_DIR/
      config.yaml                      fully resolved RunConfig
      invocation.json                  what the latest `prada run` is doing (read by `prada status`)
      teacher/cache.jsonl              every completed teacher request (append-only, fsync'd)
      teacher/corpus.jsonl             kept (correct, de-duplicated) rationales, one per line
      teacher/samples/{task}.jsonl     every answered sample, replayable (teacher.replay_dir)
      teacher/summary.json             yield, token usage, cost
      train/{method}-seed{seed}/       one training run
        log.jsonl                      one line per optimizer step
        tb/                            TensorBoard events
        checkpoints/step-{N}/          resumable state (weights + optimizer + RNG + data position)
        snapshots/step-{N}/            weights only, for accuracy-vs-step curves
        final/                         the trained student (a checkpoint ``prada`` can load)
        summary.json                   steps, wall time, tokens/s
      eval/{model}/{task}/predictions.jsonl, metrics.json
      features/{model}.npz             pooled question features for t-SNE / proxy A-distance
      report/                          table.md, table.csv, *.png, index.html

``RunPaths`` owns every sub-path, the model-name format (``model_name`` / ``parse_model_name``:
``{method}-seed{seed}`` for a trained student, ``{method}-seed{seed}@step-{N}`` for a snapshot,
any other name, e.g. ``zero_shot_cot``, for a model without seed) and when each stage is done.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from prada.errors import RunDirError

_MODEL_RE = re.compile(r"^(?P<method>.+?)-seed(?P<seed>\d+)(?:@step-(?P<step>\d+))?$")


@dataclass(frozen=True)
class ModelName:
    """A parsed evaluation/feature name: ``prada-seed1@step-40`` -> (prada, 1, 40)."""

    method: str
    seed: int | None = None
    snapshot_step: int | None = None
    """Set for snapshot evaluations only (``@step-N``); ``None`` for final weights."""

    @property
    def run(self) -> str:
        """The training run's name without the snapshot suffix."""
        return self.method if self.seed is None else f"{self.method}-seed{self.seed}"

    def __str__(self) -> str:
        return self.run if self.snapshot_step is None else f"{self.run}@step-{self.snapshot_step}"


def model_name(method: str, seed: int | None = None, step: int | None = None) -> str:
    """The name of a model's folders (``train/``, ``eval/``, ``features/``).

    >>> model_name("prada", 0), model_name("prada", 0, 40), model_name("zero_shot_cot")
    ('prada-seed0', 'prada-seed0@step-40', 'zero_shot_cot')
    """
    return str(ModelName(method, seed, step))


def parse_model_name(name: str) -> ModelName:
    """The inverse of ``model_name``.

    >>> parse_model_name("prada-seed1@step-40")
    ModelName(method='prada', seed=1, snapshot_step=40)
    >>> parse_model_name("zero_shot_cot")
    ModelName(method='zero_shot_cot', seed=None, snapshot_step=None)
    """
    m = _MODEL_RE.match(name)
    if not m:
        return ModelName(method=name)
    step = m.group("step")
    return ModelName(m.group("method"), int(m.group("seed")), int(step) if step else None)


STEP_PREFIX = "step-"
"""``checkpoints/step-N`` and ``snapshots/step-N``."""


@dataclass(frozen=True)
class RunPaths:
    """Every path of a run directory (see the module docstring) and each stage's done check."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def invocation(self) -> Path:
        return self.root / "invocation.json"

    @property
    def teacher_dir(self) -> Path:
        return self.root / "teacher"

    @property
    def teacher_cache(self) -> Path:
        return self.teacher_dir / "cache.jsonl"

    @property
    def teacher_corpus(self) -> Path:
        return self.teacher_dir / "corpus.jsonl"

    @property
    def teacher_summary(self) -> Path:
        return self.teacher_dir / "summary.json"

    def train_dir(self, method: str, seed: int) -> Path:
        return self.root / "train" / model_name(method, seed)

    def train_log(self, method: str, seed: int) -> Path:
        return self.train_dir(method, seed) / "log.jsonl"

    def train_summary(self, method: str, seed: int) -> Path:
        return self.train_dir(method, seed) / "summary.json"

    def final_dir(self, method: str, seed: int) -> Path:
        return self.train_dir(method, seed) / "final"

    def checkpoints_dir(self, method: str, seed: int) -> Path:
        return self.train_dir(method, seed) / "checkpoints"

    def snapshots_dir(self, method: str, seed: int) -> Path:
        return self.train_dir(method, seed) / "snapshots"

    def eval_dir(self, model_name: str, task: str) -> Path:
        return self.root / "eval" / model_name / task

    def eval_metrics(self, model_name: str, task: str) -> Path:
        return self.eval_dir(model_name, task) / "metrics.json"

    def features_file(self, model_name: str) -> Path:
        return self.root / "features" / f"{model_name}.npz"

    @property
    def report_dir(self) -> Path:
        return self.root / "report"

    @property
    def report_index(self) -> Path:
        return self.report_dir / "index.html"

    def snapshots(self, method: str, seed: int) -> list[tuple[int, Path]]:
        """``(step, folder)`` of every kept snapshot of a training run, by step."""
        found = [(int(p.name[len(STEP_PREFIX):]), p) for p in self.snapshots_dir(method, seed).glob(f"{STEP_PREFIX}*")
                 if p.name[len(STEP_PREFIX):].isdigit()]
        return sorted(found)

    # -- When a stage is done: its last output exists -----------------------------------------

    def teacher_done(self) -> bool:
        """The corpus and a summary that does not report failed samples (``complete``)."""
        from prada.io import read_json

        if not (self.teacher_summary.exists() and self.teacher_corpus.exists()):
            return False
        return bool(read_json(self.teacher_summary).get("complete", True))

    def train_done(self, method: str, seed: int) -> bool:
        """``final/`` is written last by training (then ``summary.json``)."""
        return self.final_dir(method, seed).exists()

    def eval_done(self, model: str, task: str) -> bool:
        """``metrics.json`` is written last by an evaluation."""
        return self.eval_metrics(model, task).exists()

    def features_done(self, model: str) -> bool:
        return self.features_file(model).exists()


def read_run_config(path: Path) -> dict[str, Any]:
    """A run folder's ``config.yaml``; a damaged one is a ``RunDirError`` naming it and what to do."""
    fix = ("it records the config that made this run folder: restore it (each train/*/config.yaml holds a "
           "copy), or use a new output_dir")
    try:
        raw = yaml.safe_load(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise RunDirError(f"{path}: not UTF-8 text (offset {e.start}); {fix}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise RunDirError(f"{where}: malformed YAML ({getattr(e, 'problem', None) or 'unreadable'}); {fix}") from None
    if not isinstance(raw, dict):
        raise RunDirError(f"{path}: expected a mapping of config sections, got {type(raw).__name__}; {fix}")
    return raw
