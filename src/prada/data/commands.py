"""``prada data``: list tasks, show examples, score a recorded teacher."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from prada.config import DataConfig, config_from_dict, load_raw
from prada.data.tasks import BUILTIN_TASKS, get_task, list_tasks, resolve_data_dir, split_policy_of
from prada.data.teacher_corpus import score_recorded_teacher
from prada.errors import DataError
from prada.formats import ZERO_SHOT_PROMPT
from prada.methods import FT

data_app = typer.Typer(
    name="data",
    help="Datasets: list the tasks, show examples, score the recorded teacher.\n\n"
    "Example: prada data list --data-dir ../shared/data",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _console() -> Console:
    """A console as wide as the terminal, or 120 columns when output is piped (tables stay whole)."""
    probe = Console()
    return probe if probe.is_terminal else Console(width=120)


console = _console()

PUBLISHED_ZERO_SHOT_COT = {
    "singleeq": 78.0, "addsub": 69.6, "multiarith": 78.7, "gsm8k": 40.7, "aqua": 33.5,
    "svamp": 62.1, "commonsense_qa": 64.6, "strategy_qa": 54.8, "date_understanding": 67.5,
    "tracking_shuffled_objects": 52.4, "last_letters": 57.6, "coin_flip": 91.4,
}
"""Zero-Shot-CoT with text-davinci-002, accuracy % (Kojima et al. 2022, Table 1)."""

DataDirOption = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data directory laid out like shared/data (default: $PRADA_DATA_DIR).",
                 show_default=False),
]

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="A run config: its data.custom_tasks, data.seed, "
                 "data.val_fraction and data.data_dir apply.", show_default=False),
]


def _from_config(config: Path | None, data_dir: Path | None) -> tuple[DataConfig, Path | None]:
    """The config's DataConfig, and the data dir: --data-dir > data.data_dir > $PRADA_DATA_DIR."""
    if config is None:
        return DataConfig(), data_dir
    # The whole file is validated (one config, one set of rules), though only its data section is
    # used; a file with only a data section names no methods, so the default grid's need for target
    # tasks does not apply.
    raw = load_raw(config)
    raw.setdefault("methods", [FT.name])
    cfg = config_from_dict(raw, source=str(config))
    return cfg.data, data_dir if data_dir is not None else cfg.resolved_data_dir()


@data_app.command("list")
def list_command(data_dir: DataDirOption = None, config: ConfigOption = None) -> None:
    """List every task with its category, answer type, split policy and split sizes.

    Synthetic tasks need no data directory; without one, the 12 datasets are listed without sizes.

    Example: prada data list --data-dir ../shared/data
    """
    data_cfg, data_dir = _from_config(config, data_dir)
    root = None
    try:
        root = resolve_data_dir(data_dir)
    except DataError:
        if data_dir is not None:
            raise
    table = Table(title="prada tasks" + (f" ({root})" if root else " (no data dir: sizes not shown)"))
    for col in ("task", "category", "answer type", "split", "train", "test"):
        table.add_column(col, justify="right" if col in ("train", "test") else "left")
    for name in list_tasks(data_cfg):
        task = get_task(name, data_cfg)
        if name in BUILTIN_TASKS and root is None:
            policy, train, test = task.split_policy, "-", "-"
        else:
            sizes = task.sizes(root)
            builtin = name in BUILTIN_TASKS and root is not None  # (a built-in without root: above)
            policy = split_policy_of(name, root, data_cfg.seed) if builtin and root is not None else task.split_policy
            train, test = str(sizes["train"]), str(sizes["test"])
        table.add_row(name, task.category.value, task.answer_type.value, policy, train, test)
    console.print(table)


@data_app.command("show")
def show_command(
    task: Annotated[str, typer.Argument(help="Task name (see `prada data list`).")],
    split: Annotated[str, typer.Option("--split", help="train, test (or val).")] = "test",
    n: Annotated[int, typer.Option("-n", help="How many examples.")] = 3,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Print the first N examples of a task's split (question, answer, choices, rationale).

    Example: prada data show multiarith --split test -n 2 --data-dir ../shared/data
    """
    data_cfg, data_dir = _from_config(config, data_dir)
    t = get_task(task, data_cfg)
    examples = t.load(split, data_dir)
    console.print(f"[bold]{t.name}[/] {split}: {len(examples)} examples ({t.category.value}, "
                  f"{t.answer_type.value}); trigger: {t.trigger!r}", highlight=False)
    for ex in examples[: max(n, 0)]:
        console.print(f"\n[bold]{ex.id}[/]", highlight=False)
        console.print(f"Q: {ex.question}", highlight=False, markup=False)
        console.print(f"A: {ex.answer}", highlight=False, markup=False)
        if ex.rationale:
            console.print(f"rationale: {ex.rationale}", highlight=False, markup=False)


@data_app.command("score-teacher")
def score_teacher_command(
    data_dir: DataDirOption = None,
    teacher: Annotated[str, typer.Option("--teacher", help="Recorded teacher folder.")] = "text-davinci-002",
    method: Annotated[str, typer.Option("--method", help="Recorded prompting method folder.")] = ZERO_SHOT_PROMPT,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Re-extract each recorded completion's answer (from `answer_completion`, with prada's own
    extraction) and print per-dataset accuracy against each record's gold.

    Two columns: `strict` is the published Zero-Shot-CoT comparison (exact string), `numeric`
    compares numbers numerically (|diff| <= 1e-6). Records are joined to the dataset by question
    text; unmatched counts are reported.

    Example: prada data score-teacher --data-dir ../shared/data --json
    """
    root = resolve_data_dir(data_dir)
    rows = []
    for name in BUILTIN_TASKS:
        score = score_recorded_teacher(root, name, teacher, method)
        row = score.to_dict()
        row["published"] = PUBLISHED_ZERO_SHOT_COT.get(name) if teacher == "text-davinci-002" else None
        rows.append(row)
    if as_json:
        typer.echo(json.dumps({"teacher": teacher, "method": method, "datasets": rows}, indent=2))
        return
    table = Table(title=f"Recorded {teacher} / {method}: accuracy % (re-extracted)")
    for col in ("task", "n", "strict", "numeric", "published", "no answer", "unmatched records"):
        table.add_column(col, justify="left" if col == "task" else "right")
    for r in rows:
        table.add_row(r["task"], str(r["n"]), f"{r['accuracy_strict']:.1f}", f"{r['accuracy']:.1f}",
                      "-" if r["published"] is None else f"{r['published']:.1f}",
                      str(r["no_answer"]), str(r["records_unmatched"]))
    console.print(table)


__all__ = ["data_app", "PUBLISHED_ZERO_SHOT_COT"]
