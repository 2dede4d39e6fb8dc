"""``prada run CONFIG.yaml``: teacher → training (methods × seeds) → evaluation → report.

The run directory is the cache: every stage writes its outputs last and is skipped when they
exist, so re-running a finished run does no work, and re-running an interrupted one resumes
(training continues from its latest checkpoint, the teacher from its request cache).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from prada.subset import seeded_subset
from prada.methods import ZERO_SHOT_COT, ZERO_SHOT_MODEL, method_spec
from prada.config import RunConfig, config_changes, dump_yaml, load_config
from prada.errors import DataError, RunDirError, TeacherError
from prada.invocation import Invocation
from prada.io import read_json, write_text_atomic
from prada.paths import RunPaths, read_run_config
from prada.progress import Progress, from_cli, silent

logger = logging.getLogger(__name__)
console = Console()

"""Name under which the untrained student, prompted with Zero-Shot-CoT, is evaluated."""

# Keys that may change between invocations on the same run directory: they grow the grid or only
# change how things are displayed/executed, never what an existing output means.
_MUTABLE_KEYS = {
    "name",
    "output_dir",
    "methods",
    "seeds",
    "report",
    "data.data_dir",
    "eval.batch_size",
    "eval.backend",
    "eval.device",  # where generation runs, not what is generated
    "train.eval_checkpoints",  # only whether step snapshots are kept for evaluation
    "eval.zero_shot_baseline",
    "eval.tasks",
    # A limit that only refuses questions: raising it lets a run go on, never changes an output.
    "student.max_question_tokens",
}


def check_compatible(saved: dict[str, Any], cfg: RunConfig, config_path: Path) -> None:
    """Refuse to reuse a run directory whose outputs were produced by a different config."""
    changed = config_changes(saved, cfg, _MUTABLE_KEYS)
    if changed:
        lines = "\n  ".join(changed)
        raise RunDirError(
            f"{config_path}: this run directory was made with a different config; its outputs would "
            f"not match. Changed keys:\n  {lines}\nUse a new output_dir (e.g. output_dir=runs/new) "
            "or restore these values. Nothing was overwritten."
        )


# JSON files of a run folder that later stages read, and what to do when one is damaged.
_RUN_JSON = (
    ("teacher/summary.json", "delete it and run the same command again: the teacher rebuilds it from its "
                             "request cache without asking the teacher again"),
    ("train/*/summary.json", "delete that training folder's final/ and summary.json and run the same command "
                             "again: training resumes from its last checkpoint"),
    ("eval/*/*/metrics.json", "delete it and run the same command again to re-evaluate that model"),
)


def check_run_dir(paths: RunPaths, cfg: RunConfig) -> None:
    """Refuse, before anything is written, a run folder that holds outputs of another config or a
    damaged file (one error naming the file and what to do)."""
    if paths.root.exists() and not paths.root.is_dir():
        raise RunDirError(f"{paths.root}: output_dir is a file, not a folder; choose another output_dir")
    if not paths.config.exists():
        return
    if not _has_outputs(paths):
        # A config.yaml without outputs (an invocation refused before any stage wrote a file):
        # nothing would be overwritten, so another config may take the folder over.
        return
    check_compatible(read_run_config(paths.config), cfg, paths.config)
    for pattern, fix in _RUN_JSON:
        for path in sorted(paths.root.glob(pattern)):
            try:
                content = read_json(path)
            except DataError as e:
                raise RunDirError(f"{e}; {fix}") from None
            if not isinstance(content, dict):
                raise RunDirError(f"{path}: expected a JSON object, got {type(content).__name__}; {fix}")


def _has_outputs(paths: RunPaths) -> bool:
    """Whether the run folder holds a stage's output: any file besides config.yaml and the record
    of the last invocation (``invocation.json``, which only says what ran)."""
    return any(p.is_file() and p not in (paths.config, paths.invocation) for p in paths.root.rglob("*"))


@dataclass(frozen=True)
class ModelJob:
    """One model to evaluate: the untrained base, a trained student or one of its snapshots."""

    name: str
    model_ref: str
    prompt_style: str
    step: int | None = None


def prompt_style_for(method: str) -> str:
    """The evaluation prompt style of a trained method's models (from the method registry)."""
    return method_spec(method).prompt_style


def run_experiment(cfg: RunConfig, *, report: bool = True, progress: Progress | None = None) -> Path:
    """Run (or resume) the whole experiment; return the run directory.

    ``progress`` shows each stage (``prada.progress``; default: silent). What the run is doing, and
    why it stopped if it fails, is kept in ``RUN_DIR/invocation.json`` for ``prada status``.
    """
    invocation = Invocation(RunPaths(Path(cfg.output_dir)).invocation)
    try:
        root = _run_experiment(cfg, report, progress or silent(), invocation)
    except BaseException as e:
        invocation.fail(e)  # nothing is recorded for a run refused before its first stage
        raise
    invocation.finish()
    return root


def _run_experiment(cfg: RunConfig, report: bool, progress: Progress, invocation: Invocation) -> Path:
    from prada.data import get_task

    paths = RunPaths(Path(cfg.output_dir))
    # -- 0. Every check before the first write: a refused invocation leaves the folder as it was --
    check_run_dir(paths, cfg)
    data_dir = cfg.resolved_data_dir()
    source = get_task(cfg.data.source, cfg.data)
    targets = [get_task(t, cfg.data) for t in cfg.data.targets]
    eval_tasks = [source, *targets] if cfg.eval.tasks == "all" else [source]
    eval_targets = eval_tasks[1:]
    # t-SNE and the proxy A-distance compare domains: they need the targets' evaluations too.
    want_features = (cfg.report.plots or report) and bool(eval_targets)
    # Fail on a missing/invalid dataset now, not after an hour of training.
    for task in eval_tasks:
        task.load(cfg.eval.split, data_dir)
    for task in [source, *targets]:
        task.load("train", data_dir)
    write_text_atomic(paths.config, dump_yaml(cfg))

    started = time.perf_counter()
    invocation.start()

    # 1. Teacher -------------------------------------------------------------------------------
    if _teacher_complete(paths):
        console.print(f"[dim]teacher: done ({paths.teacher_corpus})[/]")
    else:
        from prada.teacher import run_teacher_stage

        console.rule("teacher")
        invocation.at("teacher")
        with progress.stage_callback("teacher", "samples") as on_teacher_progress:
            summary = run_teacher_stage(cfg, paths.teacher_dir, progress=on_teacher_progress)
        if not summary.get("complete", True):
            raise TeacherError(
                f"{paths.teacher_summary}: {summary.get('failed_samples', '?')} teacher samples failed "
                "after all retries; re-run the same command to retry only those (completed requests "
                "are cached)."
            )

    # 2. Training ------------------------------------------------------------------------------
    from prada.training import train

    jobs: list[ModelJob] = []
    if cfg.eval.zero_shot_baseline:
        jobs.append(ModelJob(ZERO_SHOT_MODEL, cfg.student.model, ZERO_SHOT_COT.prompt_style))
    lengths_checked = False
    for seed in cfg.seeds:
        for method in cfg.methods:
            out = paths.train_dir(method, seed)
            name = out.name
            if (out / "final").exists():
                console.print(f"[dim]train {name}: done[/]")
            elif _outputs_kept_without_weights(paths, out, eval_tasks, features=want_features):
                # A committed results folder keeps metrics and features, not weights: adding a seed
                # or a method to it must not retrain (and re-evaluate) what it already measured.
                console.print(f"[dim]train {name}: done (weights not kept; its evaluations are)[/]")
            else:
                invocation.at("train", name)
                if not lengths_checked:  # before the first training, not on runs with nothing to train
                    _check_question_lengths(cfg, eval_tasks, data_dir, features=want_features)
                    lengths_checked = True
                console.rule(f"train {name}")
                train(cfg, method, seed, out, paths.teacher_corpus, resume=True, progress=progress)
            jobs.append(ModelJob(name, str(out / "final"), prompt_style_for(method)))
            for snapshot in sorted(out.glob("snapshots/step-*"), key=lambda p: int(p.name.split("-")[1])):
                step = int(snapshot.name.split("-")[1])
                jobs.append(ModelJob(f"{name}@step-{step}", str(snapshot), prompt_style_for(method), step))

    # 3-4. Evaluation and features, each model loaded once for all of its outputs ----------------
    from prada.evaluation import evaluate_model, extract_features
    from prada.evaluation.evaluate import load_model_for_eval

    feature_examples = _feature_examples(cfg, eval_tasks, data_dir) if want_features else {}
    for job in jobs:
        # Snapshots only feed the accuracy-vs-step curves, which are about the targets.
        tasks = [t for t in (eval_targets if job.step is not None else eval_tasks)
                 if not (paths.eval_dir(job.name, t.name) / "metrics.json").exists()]
        features_out = paths.features_file(job.name)
        wants_features = (want_features and job.step is None and job.name != ZERO_SHOT_MODEL
                          and not features_out.exists())
        if not tasks and not wants_features:
            continue
        model: Any = job.model_ref
        info: dict[str, Any] | None = None
        if cfg.eval.backend != "vllm":  # vLLM loads its own copy per evaluation
            model, info = load_model_for_eval(job.model_ref, cfg.student, cfg.eval.device, cfg.eval.dtype)
        for task in tasks:
            console.print(f"evaluate {job.name} on {task.name}")
            invocation.at("eval", job.name, task.name)
            evaluate_model(model, task, cfg, paths.eval_dir(job.name, task.name), prompt_style=job.prompt_style,
                           model_name=job.model_ref, model_info=info, progress=progress, label=job.name)
        if wants_features:
            console.print(f"features {job.name}")
            invocation.at("features", job.name)
            extract_features(model if info is not None else job.model_ref, feature_examples, cfg,
                             out_path=features_out, progress=progress, name=job.name)
        del model

    # 5. Report ---------------------------------------------------------------------------------
    if report:
        invocation.at("report")
        _report(paths, progress)
    print_summary(paths, cfg, jobs, [t.name for t in eval_tasks])
    console.print(f"run directory: {paths.root}  ({time.perf_counter() - started:.0f} s this invocation)")
    return paths.root


def _outputs_kept_without_weights(paths: RunPaths, train_dir: Path, tasks: list[Any], *, features: bool) -> bool:
    """True when a trained model's summary and all its downstream outputs exist."""
    name = train_dir.name
    if not (train_dir / "summary.json").exists():
        return False
    if features and not paths.features_file(name).exists():
        return False
    return all((paths.eval_dir(name, t.name) / "metrics.json").exists() for t in tasks)


def _check_question_lengths(cfg: RunConfig, tasks: list[Any], data_dir: Path | None, *, features: bool) -> None:
    """Refuse a too-long evaluated question now, not after training (names the example and task)."""
    from prada.evaluation.evaluate import evaluated_examples
    from prada.student.format import encode_questions
    from prada.student.model import load_tokenizer, resolve_model_path

    tokenizer = load_tokenizer(resolve_model_path(cfg.student.model), trust_remote_code=cfg.student.trust_remote_code)
    per_task = {t.name: evaluated_examples(t, cfg) for t in tasks}
    if features:
        for name, examples in _feature_examples(cfg, tasks, data_dir).items():
            per_task[name] = [*per_task[name], *examples]
    for name, examples in per_task.items():
        try:
            encode_questions(examples, tokenizer, cfg.student)
        except DataError as e:
            raise DataError(f"task '{name}', {cfg.eval.split} split (evaluated): {e}") from None


def _teacher_complete(paths: RunPaths) -> bool:
    if not (paths.teacher_summary.exists() and paths.teacher_corpus.exists()):
        return False
    return bool(read_json(paths.teacher_summary).get("complete", True))


def _feature_examples(cfg: RunConfig, tasks: list[Any], data_dir: Path | None) -> dict[str, list[Any]]:
    # In the order drawn (not the split's): the committed t-SNE and A-distance were computed so.
    return {task.name: seeded_subset(task.load(cfg.eval.split, data_dir), cfg.report.feature_examples, cfg.eval.seed,
                                     keep_order=False)
            for task in tasks}


def _report(paths: RunPaths, progress: Progress) -> None:
    from prada.reporting import build_report

    index = paths.report_dir / "index.html"
    inputs = [p for pattern in ("eval/*/*/metrics.json", "train/*/log.jsonl", "features/*.npz")
              for p in paths.root.glob(pattern)]
    if index.exists() and inputs and max(p.stat().st_mtime for p in inputs) <= index.stat().st_mtime:
        console.print(f"[dim]report: up to date ({index})[/]")
        return
    console.rule("report")
    build_report([paths.root], paths.report_dir, progress=progress)
    console.print(f"report: {index}")


def print_summary(paths: RunPaths, cfg: RunConfig, jobs: list[ModelJob], task_names: list[str]) -> None:
    table = Table(title=f"{cfg.name}: accuracy (%) on {cfg.eval.split}")
    table.add_column("model")
    for i, name in enumerate(task_names):
        table.add_column(f"{name} ({'source' if i == 0 else 'target'})", justify="right")
    for job in jobs:
        if job.step is not None:
            continue
        row = [job.name]
        for name in task_names:
            metrics_path = paths.eval_dir(job.name, name) / "metrics.json"
            if metrics_path.exists():
                m = read_json(metrics_path)
                try:
                    row.append(f"{100 * float(m['accuracy']):.1f} ({int(m['correct'])}/{int(m['n'])})")
                except (KeyError, TypeError, ValueError):
                    raise RunDirError(f"{metrics_path}: lacks accuracy/correct/n; delete it and run the same "
                                      "command again to re-evaluate that model") from None
            else:
                row.append("-")
        table.add_row(*row)
    console.print(table)


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run_command(
        config: Path = typer.Argument(..., help="Experiment YAML (see configs/)."),
        overrides: list[str] = typer.Argument(None, help="Dotted overrides, e.g. train.lr=1e-4"),
        no_report: bool = typer.Option(False, "--no-report", help="Skip building the report."),
    ) -> None:
        """Run an experiment end to end: teacher, training, evaluation, report.

        Re-running skips finished stages and resumes interrupted training.

        Examples:

          prada run configs/quickstart.yaml

          prada run configs/experiments/multiarith.yaml --  seeds=[0,1] data.data_dir=../shared/data
        """
        cfg = load_config(config, overrides or [])
        with from_cli() as progress:
            run_experiment(cfg, report=not no_report, progress=progress)
