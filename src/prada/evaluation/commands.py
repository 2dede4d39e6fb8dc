"""``prada evaluate``: score a checkpoint or a plain model on one task."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer


def _slug(model: str) -> str:
    """A folder name for a model reference: ``runs/x/train/prada-seed0/final`` -> ``prada-seed0-final``."""
    parts = [p for p in Path(model).parts if p not in ("/", ".", "..")][-2:]
    return re.sub(r"[^A-Za-z0-9_.@-]+", "-", "-".join(parts)).strip("-") or "model"


def evaluate(
    model: Annotated[str, typer.Option("--model", "-m", help="Checkpoint dir (e.g. RUN/train/prada-seed0/final), model folder or alias (smollm2-135m-instruct).")],
    task: Annotated[str, typer.Option("--task", "-t", help="Task name (see `prada data list`).")],
    split: Annotated[str | None, typer.Option(help="Split to evaluate (default: eval.split of --config, else test).", show_default=False)] = None,
    style: Annotated[str | None, typer.Option(help="student | answer_only | zero_shot_cot (default: student for a checkpoint — answer_only for method ft — and zero_shot_cot for a plain model).", show_default=False)] = None,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Data directory (default: $PRADA_DATA_DIR).", show_default=False)] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Output folder (default: runs/evaluate/MODEL/TASK).", show_default=False)] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="Generation batch size (default: eval.batch_size=16).", show_default=False)] = None,
    max_new_tokens: Annotated[int | None, typer.Option("--max-new-tokens", help="New-token budget (default: eval.max_new_tokens=128).", show_default=False)] = None,
    max_examples: Annotated[int | None, typer.Option("--max-examples", help="Seeded subset of the split (same for every model).", show_default=False)] = None,
    chat: Annotated[bool | None, typer.Option("--chat/--no-chat", help="zero_shot_cot through the tokenizer's chat template (default: student.chat_template of --config, else no).", show_default=False)] = None,
    backend: Annotated[str | None, typer.Option(help="hf | vllm (vllm: needs the vllm package and a GPU; not for P-Tuning checkpoints; default: eval.backend of --config, else hf).", show_default=False)] = None,
    device: Annotated[str | None, typer.Option(help="Where the hf backend runs: auto (a CUDA GPU when visible, else CPU), cpu, cuda, cuda:N (default: eval.device=auto).", show_default=False)] = None,
    config: Annotated[Path | None, typer.Option("--config", help="A config YAML to take the data (custom tasks, data_dir), student and eval settings from; flags override it. Training-only rules (methods, targets) are not checked.", show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Re-evaluate even if OUT/metrics.json exists.")] = False,
) -> None:
    """Evaluate a model on a task; writes OUT/predictions.jsonl and OUT/metrics.json.

    Examples:

        prada evaluate --model smollm2-135m-instruct --task multiarith --style zero_shot_cot --data-dir ../shared/data

        prada evaluate --model runs/quickstart/train/prada-seed0/final --task svamp --max-examples 100
    """
    from prada.config import RunConfig, load_config, with_overrides
    from prada.data import get_task
    from prada.errors import ConfigError
    from prada.evaluation import evaluate_model
    from prada.formats import PROMPT_STYLES, STUDENT_STYLE, ZERO_SHOT_STYLE
    from prada.methods import METHOD_SPECS
    from prada.progress import from_cli

    if backend is not None and backend not in ("hf", "vllm"):
        raise ConfigError(f"--backend '{backend}': valid backends are ['hf', 'vllm']")
    for name, value in (("--batch-size", batch_size), ("--max-new-tokens", max_new_tokens), ("--max-examples", max_examples)):
        if value is not None and value < 1:
            raise ConfigError(f"{name} must be >= 1, got {value}")
    # The file's data/student/eval settings, without the checks only training needs.
    # Every flag is a dotted override of that config: the result is typed and validated again.
    flags = {"eval.split": split, "eval.backend": backend, "data.data_dir": None if data_dir is None else str(data_dir),
             "eval.batch_size": batch_size, "eval.max_new_tokens": max_new_tokens, "eval.max_examples": max_examples,
             "eval.device": device, "student.chat_template": chat}
    base = load_config(config, scope="evaluate") if config is not None else RunConfig()
    cfg = with_overrides(base, {k: v for k, v in flags.items() if v is not None}, scope="evaluate", source="flags")
    if style is None:
        from prada.student.student import is_checkpoint, read_checkpoint_meta

        if is_checkpoint(model):
            # The checkpoint's method decides (checkpoint metadata is checked when the model loads).
            spec = METHOD_SPECS.get(str(read_checkpoint_meta(model).get("method")))
            style = spec.prompt_style if spec is not None else STUDENT_STYLE
        else:
            style = ZERO_SHOT_STYLE
    if style not in PROMPT_STYLES:
        raise ConfigError(f"--style '{style}': valid styles are {list(PROMPT_STYLES)}")
    the_task = get_task(task, cfg.data)
    out_dir = out if out is not None else Path("runs") / "evaluate" / f"{_slug(model)}-{style}" / task
    with from_cli() as progress:
        metrics = evaluate_model(model, the_task, cfg, out_dir, prompt_style=style, force=force,
                                 progress=progress)
    typer.echo(
        f"{task} ({metrics.split}, {style}): accuracy {100 * metrics.accuracy:.1f}% "
        f"({metrics.correct}/{metrics.n}), {metrics.generated_tokens or 0} tokens generated, "
        f"{metrics.tokens_per_s or 0:.0f} tokens/s, {metrics.wall_s or 0:.1f} s"
    )
    typer.echo(f"predictions: {out_dir / 'predictions.jsonl'}")


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
