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
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from prada.errors import RunDirError


@dataclass(frozen=True)
class RunPaths:
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
        return self.root / "train" / f"{method}-seed{seed}"

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
