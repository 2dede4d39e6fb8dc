"""``prada teach``: stage 1 from the command line (a thin layer over ``run_teacher_stage``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from prada.config import RunConfig, config_from_dict, load_raw, parse_override
from prada.methods import BASE_METHOD

console = Console()
err_console = Console(stderr=True)

EXAMPLES = """
Examples:

  prada teach --backend replay --task multiarith --data-dir ../shared/data --out runs/demo/teacher

  prada teach --config configs/quickstart.yaml teacher.samples=8

  OPENAI_API_KEY=... prada teach -c cfg.yaml --backend openai --model gpt-4o-mini --samples 8 --temperature 0.7

  prada teach -c cfg.yaml --backend openai --base-url http://127.0.0.1:8000/v1 --model my-model teacher.concurrency=64

  prada teach --backend hf --model smollm2-135m-instruct --task synth_last_letters --samples 4 --out /tmp/t

  prada teach --backend gold --task gsm8k --data-dir ../shared/data data.max_source_examples=500
"""


def flag_overrides(
    *,
    task: str | None = None,
    backend: str | None = None,
    model: str | None = None,
    samples: int | None = None,
    temperature: float | None = None,
    base_url: str | None = None,
    data_dir: Path | None = None,
    prompt: str | None = None,
    chat: bool | None = None,
    max_examples: int | None = None,
) -> dict[str, Any]:
    """``{dotted key: value}`` for the flags that were given (values keep their types: a model
    called ``1e-3`` stays a string)."""
    pairs = {
        "data.source": task,
        "teacher.backend": backend,
        "teacher.model": model,
        "teacher.samples": samples,
        "teacher.temperature": None if temperature is None else float(temperature),
        "teacher.base_url": base_url,
        "data.data_dir": None if data_dir is None else str(data_dir),
        "teacher.prompt": prompt,
        "teacher.chat": chat,
        "data.max_source_examples": max_examples,
    }
    return {k: v for k, v in pairs.items() if v is not None}


def build_config(config: Path | None, overrides: list[str], flags: dict[str, Any]) -> RunConfig:
    """The config file (or the defaults), then the dotted overrides, then the flags (flags win).

    Without a config file ``methods`` is ``[ft_cot]``: the default grid needs target tasks, which do
    not matter to stage 1.
    """
    raw = load_raw(config)
    if config is None:
        raw["methods"] = [BASE_METHOD]
    for key, value in [*(parse_override(o) for o in overrides), *flags.items()]:
        node = raw
        *parents, leaf = key.split(".")
        for part in parents:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[leaf] = value
    return config_from_dict(raw, source=str(config) if config else "config")


def summary_table(summary: dict[str, Any]) -> Table:
    table = Table(title=f"teacher: {summary['backend']} / {summary['model']} on {summary['task']} ({summary['split']})",
                  show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    q, k = summary["questions"], summary["questions_with_correct"]
    run = summary["this_run"]
    rows = [
        ("questions", str(q)),
        ("samples per question", str(summary["samples_per_question"])),
        ("yield", f"{k}/{q} questions with >= 1 correct rationale ({summary['yield_pct']:.1f}%)"),
        ("kept rationales", f"{summary['kept']} ({summary['mean_correct_per_question']:.2f} per question)"),
        ("correct samples", f"{summary['samples_correct']} of {summary['samples_answered']} answered"),
        ("duplicates dropped", str(summary["duplicates_dropped"])),
        ("failed samples", str(summary["failed_samples"])),
        ("requests (this run)", f"{run['requests']} ({run['failed_requests']} failed), "
                                f"{run['samples_cached_at_start']} samples were cached"),
        ("tokens (all runs)", f"{summary['usage']['prompt_tokens']} prompt + {summary['usage']['completion_tokens']} completion"),
        ("estimated cost", f"{summary['cost_usd']:.4f} (this run {run['cost_usd']:.4f})"),
        ("wall time", f"{run['wall_s']:.1f} s"),
        ("corpus", summary["files"]["corpus"]),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def teach(
    config: Path | None = typer.Option(None, "--config", "-c", help="Experiment YAML (defaults when omitted)."),
    overrides: list[str] = typer.Argument(None, help="Dotted overrides, e.g. teacher.samples=8 teacher.concurrency=64"),
    task: str | None = typer.Option(None, "--task", help="Source task (data.source), e.g. multiarith."),
    split: str = typer.Option("train", "--split", help="Split to distil (the labeled train split)."),
    backend: str | None = typer.Option(None, "--backend", help="openai | hf | vllm | replay | gold"),
    model: str | None = typer.Option(None, "--model", help="Model name / local path / alias (teacher.model)."),
    samples: int | None = typer.Option(None, "--samples", help="Samples per question D (teacher.samples)."),
    temperature: float | None = typer.Option(None, "--temperature", help="Temperature of samples 1..D-1."),
    base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1"),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Data directory (data.data_dir; else $PRADA_DATA_DIR)."),
    prompt: str | None = typer.Option(None, "--prompt", help="zero_shot_cot | few_shot_cot"),
    chat: bool | None = typer.Option(None, "--chat/--no-chat", help="Use the model's chat format."),
    max_examples: int | None = typer.Option(None, "--max-examples", help="Seeded subset of the questions."),
    out: Path | None = typer.Option(None, "--out", help="Output folder (default: OUTPUT_DIR/teacher)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or lines (the summary line stays)."),
) -> None:
    """Stage 1: the teacher writes rationales for the source task's train questions.

    Writes OUT/cache.jsonl (every completed request; a re-run skips them), OUT/corpus.jsonl (the
    correct, de-duplicated rationales) and OUT/summary.json (yield, tokens, cost). Interrupt it at
    any time and run the same command again to resume.
    """
    from prada.paths import RunPaths
    from prada.teacher import run_teacher_stage

    cfg = build_config(config, list(overrides or []), flag_overrides(
        task=task, backend=backend, model=model, samples=samples, temperature=temperature, base_url=base_url,
        data_dir=data_dir, prompt=prompt, chat=chat, max_examples=max_examples))
    out_dir = out or RunPaths(Path(cfg.output_dir)).teacher_dir

    from prada.progress import Progress, from_cli

    with Progress("quiet") if quiet else from_cli() as progress:
        with progress.stage_callback("teacher", "samples") as on_progress:
            summary = run_teacher_stage(cfg, out_dir, split=split, progress=on_progress)
    console.print(summary_table(summary))
    if not summary["complete"]:
        err_console.print(f"[yellow]warning:[/] {summary['failed_samples']} samples failed (error records in "
                          f"{summary['files']['cache']}); run the same command again to retry them")


teach.__doc__ = (teach.__doc__ or "") + EXAMPLES


def register(app: typer.Typer) -> None:
    app.command("teach")(teach)
