"""What the training loop reads: the teacher corpus (source) and target-domain questions.

- Source examples are teacher-corpus records (``corpus.jsonl``, one kept rationale per line).
  ``data.diverse: true`` uses every kept rationale of a question (Fine-tune-CoT's diverse
  reasoning); ``false`` the first one per question (lowest ``sample_index``, then file order).
- Target examples are the *questions* of each target's **train** split (never test), capped at
  ``data.max_target_examples`` per target by a subset seeded with ``data.seed`` — the same subset
  for every method and training seed, so compared methods see the same unlabeled data.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prada.config import RunConfig
from prada.errors import DataError, TrainingError
from prada.io import read_jsonl
from prada.subset import seeded_subset

logger = logging.getLogger(__name__)


@dataclass
class TrainingData:
    """Raw (untokenised) training inputs."""

    source: list[dict[str, Any]]
    """Teacher-corpus records used as labeled source examples."""
    targets: dict[str, list[Any]] = field(default_factory=dict)
    """Target task name → its train-split examples (only their questions are used)."""

    @property
    def source_questions(self) -> int:
        return len({_question_key(r) for r in self.source})


def _question_key(record: dict[str, Any]) -> str:
    return str(record.get("example_id") or record.get("question"))


def load_source(corpus_path: Path, source_task: str, *, diverse: bool) -> list[dict[str, Any]]:
    """Teacher-corpus records for training (see module docstring)."""
    corpus_path = Path(corpus_path)
    if not corpus_path.is_file():
        raise TrainingError(
            f"{corpus_path}: teacher corpus not found; run the teacher stage first "
            "(prada teacher --config CONFIG.yaml) or pass --corpus PATH"
        )
    try:
        records = read_jsonl(corpus_path)
    except DataError as e:
        raise TrainingError(f"cannot read the teacher corpus: {e}") from None
    if not records:
        raise TrainingError(
            f"{corpus_path}: the teacher corpus is empty (the teacher kept no correct rationale); "
            "nothing to train on — check the teacher's summary.json"
        )
    for i, r in enumerate(records, start=1):
        missing = [k for k in ("question", "answer", "rationale") if not isinstance(r.get(k), str)]
        if missing:
            raise TrainingError(f"{corpus_path}:{i}: record lacks {missing} (not a teacher corpus?)")
    others = sorted({r["dataset"] for r in records if r.get("dataset") not in (None, source_task)})
    if others:
        raise TrainingError(
            f"{corpus_path}: the corpus holds records of {others}, but data.source is '{source_task}'; "
            "regenerate the corpus for this source or point --corpus at the right one"
        )
    if diverse:
        return records
    first: dict[str, tuple[int, int]] = {}
    for i, r in enumerate(records):
        key, rank = _question_key(r), (int(r.get("sample_index") or 0), i)
        if key not in first or rank < first[key]:
            first[key] = rank
    keep = sorted(i for _, i in first.values())
    return [records[i] for i in keep]


def load_targets(cfg: RunConfig) -> dict[str, list[Any]]:
    """Train-split examples of every target, seeded-capped (see module docstring)."""
    from prada.data.tasks import get_task

    data_dir = cfg.resolved_data_dir()
    out: dict[str, list[Any]] = {}
    for name in cfg.data.targets:
        task = get_task(name, cfg.data)
        splits = tuple(task.splits())
        if "train" not in splits:
            raise TrainingError(
                f"target '{name}' has no train split (splits: {list(splits)}); its unlabeled "
                "training questions must not come from the test split — choose another target"
            )
        examples = list(task.load("train", data_dir))
        if not examples:
            raise TrainingError(f"target '{name}': its train split is empty")
        out[name] = seeded_subset(examples, cfg.data.max_target_examples, f"{cfg.data.seed}/targets/{name}")
    return out


def load_training_data(cfg: RunConfig, corpus_path: Path, *, with_targets: bool) -> TrainingData:
    source = load_source(corpus_path, cfg.data.source, diverse=cfg.data.diverse)
    targets = load_targets(cfg) if with_targets else {}
    logger.info(
        "source: %d examples (%d questions, diverse=%s); targets: %s",
        len(source), len({_question_key(r) for r in source}), cfg.data.diverse,
        {k: len(v) for k, v in targets.items()},
    )
    return TrainingData(source, targets)
