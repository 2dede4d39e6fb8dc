"""The task registry: 12 reasoning datasets, synthetic tasks, and users' custom datasets.

>>> task = get_task("synth_coin_flip")
>>> task.category.value, task.answer_type.value, task.trigger
('symbolic', 'yes_no', 'Therefore, the answer (Yes or No) is')
>>> len(task.load("train")), len(task.load("test"))
(500, 100)

Split policy per task (``Task.split_policy``):

- ``finetune_cot``: Fine-tune-CoT's published split (``finetune_cot/split/<name>__default.json``),
  mapped onto the original files by normalised question text;
- ``official``: the dataset's own files (GSM8K train/test; AQuA dev as train, test as test);
- ``seeded``: a seeded random split (custom datasets: ``test_fraction``; a built-in task whose
  Fine-tune-CoT files are missing falls back to 70/30 with a warning);
- ``generated``: synthetic tasks.

``DataConfig.val_fraction`` > 0 carves a seeded ``"val"`` split out of ``"train"``.
"""

from __future__ import annotations

import difflib
import functools
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from prada.config import CustomTaskConfig, DataConfig
from prada.data import loaders, synthetic
from prada.data.custom import load_custom_examples
from prada.data.example import AnswerType, Category, Example
from prada.data.splits import carve_validation, finetune_cot_split, seeded_split
from prada.errors import DataError

logger = logging.getLogger(__name__)

__all__ = ["Task", "TaskSpec", "BUILTIN_TASKS", "get_task", "list_tasks", "resolve_data_dir",
           "TRIGGERS", "STAGE2_JOIN"]

TRIGGERS: dict[str, str] = {
    "number": "Therefore, the answer (arabic numerals) is",
    "choice_E": "Therefore, among A through E, the answer is",
    "choice_F": "Therefore, among A through F, the answer is",
    "choice_C": "Therefore, among A through C, the answer is",
    "yes_no": "Therefore, the answer (Yes or No) is",
    "string": "Therefore, the answer is",
}
"""Zero-Shot-CoT answer triggers (Kojima et al. 2022), without their leading newline."""

STAGE2_JOIN = " \n"
"""Zero-Shot-CoT stage 2 is ``stage1_prompt + rationale + STAGE2_JOIN + trigger`` (Kojima's code
appends ``" "`` and a trigger that starts with ``"\\n"``)."""

DEFAULT_SEEDED_TEST_FRACTION = 0.3


@dataclass(frozen=True)
class TaskSpec:
    """What is fixed about a built-in dataset."""

    name: str
    title: str
    category: Category
    answer_type: AnswerType
    trigger: str
    choice_letters: str | None = None
    finetune_cot_name: str | None = None
    """Name of its Fine-tune-CoT list/split files, when that project publishes a split."""
    official_parts: tuple[str, str] | None = None
    """(train part, test part) of its own files, for datasets split by their authors."""


_A = AnswerType
BUILTIN_TASKS: dict[str, TaskSpec] = {
    s.name: s
    for s in (
        TaskSpec("singleeq", "SingleEq", Category.ARITHMETIC, _A.NUMBER, TRIGGERS["number"],
                 finetune_cot_name="single_eq"),
        TaskSpec("addsub", "AddSub", Category.ARITHMETIC, _A.NUMBER, TRIGGERS["number"],
                 finetune_cot_name="addsub"),
        TaskSpec("multiarith", "MultiArith", Category.ARITHMETIC, _A.NUMBER, TRIGGERS["number"],
                 finetune_cot_name="multiarith"),
        TaskSpec("gsm8k", "GSM8K", Category.ARITHMETIC, _A.NUMBER, TRIGGERS["number"],
                 official_parts=("train", "test")),
        TaskSpec("aqua", "AQuA", Category.ARITHMETIC, _A.CHOICE, TRIGGERS["choice_E"], "ABCDE",
                 official_parts=("dev", "test")),
        TaskSpec("svamp", "SVAMP", Category.ARITHMETIC, _A.NUMBER, TRIGGERS["number"],
                 finetune_cot_name="svamp"),
        TaskSpec("date_understanding", "Date Understanding", Category.OTHER, _A.CHOICE,
                 TRIGGERS["choice_F"], "ABCDEF", finetune_cot_name="date_understanding"),
        TaskSpec("tracking_shuffled_objects", "Tracking Shuffled Objects", Category.OTHER,
                 _A.CHOICE, TRIGGERS["choice_C"], "ABC", finetune_cot_name="tracking_shuffled_objects"),
        TaskSpec("last_letters", "Last Letter Concatenation", Category.SYMBOLIC, _A.STRING,
                 TRIGGERS["string"], finetune_cot_name="last_letter_concatenation"),
        TaskSpec("coin_flip", "Coin Flip", Category.SYMBOLIC, _A.YES_NO, TRIGGERS["yes_no"],
                 finetune_cot_name="coin_flip"),
        TaskSpec("commonsense_qa", "CommonsenseQA", Category.COMMONSENSE, _A.CHOICE,
                 TRIGGERS["choice_E"], "ABCDE", finetune_cot_name="commonsense_qa"),
        TaskSpec("strategy_qa", "StrategyQA", Category.COMMONSENSE, _A.YES_NO, TRIGGERS["yes_no"],
                 finetune_cot_name="strategy_qa"),
    )
}


def resolve_data_dir(data_dir: str | Path | None) -> Path:
    """``data_dir`` if given, else ``$PRADA_DATA_DIR``; a ``DataError`` saying how to set it."""
    value = data_dir if data_dir not in (None, "") else os.environ.get("PRADA_DATA_DIR")
    if not value:
        raise DataError(
            "no data directory: pass --data-dir DIR, set data.data_dir in the config, or "
            "export PRADA_DATA_DIR=DIR (a folder laid out like shared/data: raw/, finetune_cot/, teacher/)"
        )
    path = Path(value).expanduser()
    if not path.is_dir():
        raise DataError(f"{path}: data directory not found")
    return path


Splitter = Callable[[Path | None], dict[str, list[Example]]]


@dataclass(frozen=True)
class Task:
    """One task: its metadata and ``load(split, data_dir)``."""

    name: str
    category: Category
    answer_type: AnswerType
    trigger: str
    """The Zero-Shot-CoT answer trigger, e.g. ``"Therefore, the answer (arabic numerals) is"``."""
    title: str = ""
    choice_letters: str | None = None
    """Letters of the options (``"ABCDE"``) for multiple-choice tasks."""
    split_policy: str = "seeded"
    needs_data_dir: bool = True
    seed: int = 0
    val_fraction: float = 0.0
    _splitter: Splitter = field(default=lambda d: {}, repr=False, compare=False)

    def splits(self) -> tuple[str, ...]:
        return ("train", "val", "test") if self.val_fraction > 0 else ("train", "test")

    def load(self, split: str = "train", data_dir: str | Path | None = None) -> list[Example]:
        """The examples of ``split``; built-in tasks read ``data_dir`` (or ``$PRADA_DATA_DIR``)."""
        if split not in self.splits():
            hint = " (set data.val_fraction > 0 to carve one)" if split == "val" else ""
            raise DataError(f"task '{self.name}' has no split '{split}'{hint}; splits: {list(self.splits())}")
        resolved = resolve_data_dir(data_dir) if self.needs_data_dir else None
        parts = self._splitter(resolved)
        train, val = carve_validation(parts["train"], self.val_fraction, self.seed, self.name)
        return list({"train": train, "val": val, "test": parts["test"]}[split])

    def sizes(self, data_dir: str | Path | None = None) -> dict[str, int]:
        return {s: len(self.load(s, data_dir)) for s in self.splits()}


# --------------------------------------------------------------------------------------------
# Splitters (cached: the big files are read once per process)
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _builtin_split(name: str, data_dir: str, seed: int) -> tuple[str, dict[str, tuple[Example, ...]]]:
    spec = BUILTIN_TASKS[name]
    root = Path(data_dir)
    parts = loaders.read_raw(name, root)
    if spec.official_parts:
        tr, te = spec.official_parts
        return "official", {"train": tuple(parts[tr]), "test": tuple(parts[te])}
    examples = [ex for part in parts.values() for ex in part]
    ft = spec.finetune_cot_name
    ft_list = root / "finetune_cot" / "dataset" / f"{ft}.json"
    ft_split = root / "finetune_cot" / "split" / f"{ft}__default.json"
    if ft_list.is_file() and ft_split.is_file():
        split = finetune_cot_split(examples, ft_list, ft_split)
        return "finetune_cot", {k: tuple(v) for k, v in split.items()}
    missing = ft_list if not ft_list.is_file() else ft_split
    logger.warning("%s: not found; task '%s' falls back to a seeded 70/30 split (seed %d), which "
                   "differs from published results", missing, name, seed)
    split = seeded_split(examples, DEFAULT_SEEDED_TEST_FRACTION, seed, name)
    return "seeded", {k: tuple(v) for k, v in split.items()}


def split_policy_of(name: str, data_dir: Path, seed: int = 0) -> str:
    """The split policy a built-in task actually uses with ``data_dir``."""
    return _builtin_split(name, str(data_dir.resolve()), seed)[0]


def _builtin_task(spec: TaskSpec, seed: int, val_fraction: float) -> Task:
    def splitter(data_dir: Path | None) -> dict[str, list[Example]]:
        assert data_dir is not None  # resolved by Task.load
        _, parts = _builtin_split(spec.name, str(data_dir.resolve()), seed)
        return {k: list(v) for k, v in parts.items()}

    return Task(
        name=spec.name, category=spec.category, answer_type=spec.answer_type, trigger=spec.trigger,
        title=spec.title, choice_letters=spec.choice_letters,
        split_policy="official" if spec.official_parts else "finetune_cot",
        seed=seed, val_fraction=val_fraction, _splitter=splitter,
    )


def _synthetic_task(spec: synthetic.SyntheticSpec, seed: int, val_fraction: float) -> Task:
    def splitter(_: Path | None) -> dict[str, list[Example]]:
        return {s: synthetic.generate(spec.name, s, seed) for s in ("train", "test")}

    return Task(
        name=spec.name, category=Category.SYMBOLIC, answer_type=spec.answer_type,
        trigger=spec.trigger, title=spec.description, split_policy="generated",
        needs_data_dir=False, seed=seed, val_fraction=val_fraction, _splitter=splitter,
    )


def _custom_trigger(answer_type: AnswerType) -> str:
    return {
        AnswerType.NUMBER: TRIGGERS["number"], AnswerType.CHOICE: TRIGGERS["choice_E"],
        AnswerType.YES_NO: TRIGGERS["yes_no"], AnswerType.STRING: TRIGGERS["string"],
    }[answer_type]


def _custom_task(cfg: CustomTaskConfig, seed: int, val_fraction: float) -> Task:
    answer_type = AnswerType(cfg.answer_type)

    def splitter(_: Path | None) -> dict[str, list[Example]]:
        return seeded_split(load_custom_examples(cfg), cfg.test_fraction, seed, cfg.name)

    try:
        category = Category(cfg.category)
    except ValueError:
        category = Category.CUSTOM
    return Task(
        name=cfg.name, category=category, answer_type=answer_type,
        trigger=_custom_trigger(answer_type), title=f"custom: {cfg.path}",
        choice_letters="ABCDE" if answer_type is AnswerType.CHOICE else None,
        split_policy="seeded", needs_data_dir=False, seed=seed, val_fraction=val_fraction,
        _splitter=splitter,
    )


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------


def list_tasks(cfg: DataConfig | None = None) -> list[str]:
    """Names of every task: the 12 datasets, the synthetic tasks, and ``cfg``'s custom tasks."""
    names = list(BUILTIN_TASKS) + list(synthetic.SYNTHETIC_TASKS)
    if cfg is not None:
        names += [c.name for c in cfg.custom_tasks if c.name not in names]
    return names


def get_task(name: str, cfg: DataConfig | None = None) -> Task:
    """The task called ``name``; ``cfg`` supplies the seed, ``val_fraction`` and custom tasks.

    Raises ``DataError`` naming the closest valid name and listing them all.
    """
    cfg = cfg or DataConfig()
    seed, val = cfg.seed, cfg.val_fraction
    if not 0.0 <= val < 1.0:
        raise DataError(f"data.val_fraction must be in [0, 1), got {val}")
    for custom in cfg.custom_tasks:
        if custom.name == name:
            if name in BUILTIN_TASKS or name in synthetic.SYNTHETIC_TASKS:
                raise DataError(f"custom task '{name}' shadows a built-in task; rename it")
            return _custom_task(custom, seed, val)
    if name in BUILTIN_TASKS:
        return _builtin_task(BUILTIN_TASKS[name], seed, val)
    if name in synthetic.SYNTHETIC_TASKS:
        return _synthetic_task(synthetic.SYNTHETIC_TASKS[name], seed, val)
    valid = list_tasks(cfg)
    close = difflib.get_close_matches(str(name), valid, n=1, cutoff=0.5)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise DataError(f"unknown task '{name}'{hint}; valid tasks: {', '.join(valid)}")
