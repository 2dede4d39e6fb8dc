"""``prada train``: one training run (one method, one seed) from a config and a teacher corpus."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from prada.methods import ADV_METHOD, METHODS

console = Console()

EXAMPLES = """Examples:

  prada train --config configs/quickstart.yaml --method ft_cot

  prada train -c configs/quickstart.yaml --method prada --seed 1 train.max_steps=10

  prada train -c cfg.yaml --corpus runs/x/teacher/corpus.jsonl --out /tmp/prada --no-resume

  accelerate launch --multi_gpu --num_processes 2 -m prada.cli train -c cfg.yaml --method prada

  (on a machine without GPUs the same command runs 2 CPU processes with gloo)
"""


def register(app: typer.Typer) -> None:
    @app.command("train", epilog=EXAMPLES)
    def train_command(
        config: Path = typer.Option(..., "--config", "-c", help="Experiment YAML (see configs/)."),
        overrides: list[str] = typer.Argument(None, help="Dotted overrides, e.g. train.lr=1e-4"),
        method: str = typer.Option(ADV_METHOD, "--method", "-m", help=" | ".join(METHODS)),
        seed: int = typer.Option(0, "--seed", help="Training seed (init, data order, dropout)."),
        corpus: Path | None = typer.Option(None, "--corpus",
                                           help="Teacher corpus (default: OUTPUT_DIR/teacher/corpus.jsonl)."),
        out: Path | None = typer.Option(None, "--out",
                                        help="Run folder (default: OUTPUT_DIR/train/METHOD-seedSEED)."),
        resume: bool = typer.Option(True, "--resume/--no-resume",
                                    help="Continue from the latest checkpoint; a finished run is not redone."),
    ) -> None:
        """Train one student (one method, one seed) on the teacher corpus.

        Writes log.jsonl, tb/, checkpoints/step-N/, final/ and summary.json. Runs on every
        process under `accelerate launch` (only the main process writes files).
        """
        from prada.config import load_config
        from prada.paths import RunPaths
        from prada.progress import from_cli
        from prada.training import train

        cfg = load_config(config, overrides or [])
        paths = RunPaths(Path(cfg.output_dir))
        out_dir = out or paths.train_dir(method, seed)
        with from_cli() as progress:
            summary = train(cfg, method, seed, out_dir, corpus or paths.teacher_corpus, resume=resume,
                            progress=progress)
        shown = ", ".join(f"{k}={v:.4g}" for k, v in summary.final.items() if isinstance(v, float))
        console.print(f"trained {method}-seed{seed}: {summary.steps} steps in {summary.wall_s or 0:.1f} s "
                      f"({shown}) → {out_dir / 'final'}")
