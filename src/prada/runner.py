"""The experiment as a library function: teacher → training (methods × seeds) → evaluation → report.

``run_experiment(cfg)`` is what ``prada run CONFIG.yaml`` calls (its CLI is in ``prada.commands``).
What the run tells its user goes to a ``RunEvents`` (default: the log); the CLI prints it.

The run directory is the cache: every stage writes its outputs last and is skipped when they
exist, so re-running a finished run does no work, and re-running an interrupted one resumes
(training continues from its latest checkpoint, the teacher from its request cache).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from prada.config import RunConfig, config_changes, dump_yaml
from prada.data.example import Example
from prada.errors import DataError, RunDirError, TeacherError
from prada.eval_metrics import EvalMetrics
from prada.formats import PromptStyle
from prada.invocation import Invocation
from prada.io import read_json, write_text_atomic
from prada.methods import ZERO_SHOT_COT, ZERO_SHOT_MODEL, method_spec
from prada.paths import RunPaths, model_name, read_run_config
from prada.progress import Progress, silent
from prada.subset import seeded_subset

logger = logging.getLogger(__name__)


class RunEvents(Protocol):
    """What a run tells its user, besides the progress of each stage (``prada.progress``)."""

    def stage(self, title: str) -> None:
        """A stage begins (``teacher``, ``train prada-seed0``, ``report``)."""

    def note(self, text: str, *, skipped: bool = False) -> None:
        """One line; ``skipped``: a stage found done (its outputs exist)."""

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], *,
              right_from: int | None = None) -> None:
        """A result table (accuracies of the run; a sweep's points); columns from ``right_from`` on
        hold numbers (right-aligned on a terminal)."""


class LogEvents:
    """``RunEvents`` to the log (``logging``, level INFO): the default of the library functions."""

    def stage(self, title: str) -> None:
        logger.info("-- %s --", title)

    def note(self, text: str, *, skipped: bool = False) -> None:
        logger.info("%s", text)

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], *,
              right_from: int | None = None) -> None:
        logger.info("%s\n%s", title, "\n".join(" | ".join(row) for row in [list(columns), *rows]))

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


def _object(content: Any, path: Path, fix: str) -> None:
    if not isinstance(content, dict):
        raise RunDirError(f"{path}: expected a JSON object, got {type(content).__name__}; {fix}")


def _eval_metrics(content: Any, path: Path, fix: str) -> None:
    EvalMetrics.from_json(content, str(path))  # every field typed; its error says what to do


# JSON files of a run folder that later stages read, what to do when one is damaged, and how
# its content is checked.
_RUN_JSON = (
    ("teacher/summary.json", "delete it and run the same command again: the teacher rebuilds it from its "
                             "request cache without asking the teacher again", _object),
    ("train/*/summary.json", "delete that training folder's final/ and summary.json and run the same command "
                             "again: training resumes from its last checkpoint", _object),
    ("eval/*/*/metrics.json", "delete it and run the same command again to re-evaluate that model", _eval_metrics),
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
    for pattern, fix, check in _RUN_JSON:
        for path in sorted(paths.root.glob(pattern)):
            try:
                content = read_json(path)
            except DataError as e:
                raise RunDirError(f"{e}; {fix}") from None
            check(content, path, fix)


def _has_outputs(paths: RunPaths) -> bool:
    """Whether the run folder holds a stage's output: any file besides config.yaml and the record
    of the last invocation (``invocation.json``, which only says what ran)."""
    return any(p.is_file() and p not in (paths.config, paths.invocation) for p in paths.root.rglob("*"))


@dataclass(frozen=True)
class ModelJob:
    """One model to evaluate: the untrained base, a trained student or one of its snapshots."""

    name: str
    model_ref: str
    prompt_style: PromptStyle
    step: int | None = None


def prompt_style_for(method: str) -> PromptStyle:
    """The evaluation prompt style of a trained method's models (from the method registry)."""
    return method_spec(method).prompt_style


def run_experiment(cfg: RunConfig, *, report: bool = True, progress: Progress | None = None,
                   events: RunEvents | None = None) -> Path:
    """Run (or resume) the whole experiment; return the run directory.

    ``progress`` shows each stage (``prada.progress``; default: silent); ``events`` receives what
    the run tells its user (default: ``LogEvents``). What the run is doing, and why it stopped if it
    fails, is kept in ``RUN_DIR/invocation.json`` for ``prada status``.
    """
    invocation = Invocation(RunPaths(Path(cfg.output_dir)).invocation)
    try:
        root = _run_experiment(cfg, report, progress or silent(), invocation, events or LogEvents())
    except BaseException as e:
        invocation.fail(e)  # nothing is recorded for a run refused before its first stage
        raise
    invocation.finish()
    return root


def _run_experiment(cfg: RunConfig, report: bool, progress: Progress, invocation: Invocation,
                    events: RunEvents) -> Path:
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
    if paths.teacher_done():
        events.note(f"teacher: done ({paths.teacher_corpus})", skipped=True)
    else:
        from prada.teacher import run_teacher_stage

        events.stage("teacher")
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
            name = model_name(method, seed)
            if paths.train_done(method, seed):
                events.note(f"train {name}: done", skipped=True)
            elif _outputs_kept_without_weights(paths, method, seed, eval_tasks, features=want_features):
                # A committed results folder keeps metrics and features, not weights: adding a seed
                # or a method to it must not retrain (and re-evaluate) what it already measured.
                events.note(f"train {name}: done (weights not kept; its evaluations are)", skipped=True)
            else:
                invocation.at("train", name)
                if not lengths_checked:  # before the first training, not on runs with nothing to train
                    _check_question_lengths(cfg, eval_tasks, data_dir, features=want_features)
                    lengths_checked = True
                events.stage(f"train {name}")
                train(cfg, method, seed, out, paths.teacher_corpus, resume=True, progress=progress)
            jobs.append(ModelJob(name, str(paths.final_dir(method, seed)), prompt_style_for(method)))
            for step, snapshot in paths.snapshots(method, seed):
                jobs.append(ModelJob(model_name(method, seed, step), str(snapshot), prompt_style_for(method), step))

    # 3-4. Evaluation and features, each model loaded once for all of its outputs ----------------
    from prada.evaluation import evaluate_tasks, extract_features
    from prada.evaluation.evaluate import load_model_for_eval

    feature_examples = _feature_examples(cfg, eval_tasks, data_dir) if want_features else {}
    for job in jobs:
        # Snapshots only feed the accuracy-vs-step curves, which are about the targets.
        tasks = [t for t in (eval_targets if job.step is not None else eval_tasks)
                 if not paths.eval_done(job.name, t.name)]
        features_out = paths.features_file(job.name)
        wants_features = (want_features and job.step is None and job.name != ZERO_SHOT_MODEL
                          and not paths.features_done(job.name))
        if not tasks and not wants_features:
            continue
        model: Any = job.model_ref
        info: dict[str, Any] | None = None
        if cfg.eval.backend != "vllm":  # vLLM loads its own copy per evaluation
            model, info = load_model_for_eval(job.model_ref, cfg.student, cfg.eval.device, cfg.eval.dtype,
                                               cfg.eval.exact_top_logits, cfg.eval.decode_attention)
        if tasks:  # every task in one decoding stream (the batch does not drain between tasks)
            events.note(f"evaluate {job.name} on {', '.join(t.name for t in tasks)}")
            invocation.at("eval", job.name, ", ".join(t.name for t in tasks))
            evaluate_tasks(model, tasks, cfg, [paths.eval_dir(job.name, t.name) for t in tasks],
                           prompt_style=job.prompt_style, model_name=job.model_ref, model_info=info,
                           progress=progress, label=job.name)
        if wants_features:
            events.note(f"features {job.name}")
            invocation.at("features", job.name)
            extract_features(model if info is not None else job.model_ref, feature_examples, cfg,
                             out_path=features_out, progress=progress, name=job.name)
        del model

    # 5. Report ---------------------------------------------------------------------------------
    if report:
        invocation.at("report")
        _report(paths, progress, events)
    events.table(f"{cfg.name}: accuracy (%) on {cfg.eval.split}", *summary_table(paths, jobs, [t.name for t in eval_tasks]),
                 right_from=1)
    events.note(f"run directory: {paths.root}  ({time.perf_counter() - started:.0f} s this invocation)")
    return paths.root


def _outputs_kept_without_weights(paths: RunPaths, method: str, seed: int, tasks: list[Any], *, features: bool) -> bool:
    """True when a trained model's summary and all its downstream outputs exist."""
    name = model_name(method, seed)
    if not paths.train_summary(method, seed).exists():
        return False
    if features and not paths.features_done(name):
        return False
    return all(paths.eval_done(name, t.name) for t in tasks)


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


def _feature_examples(cfg: RunConfig, tasks: list[Any], data_dir: Path | None) -> dict[str, Sequence[Example]]:
    # In the order drawn (not the split's): the committed t-SNE and A-distance were computed so.
    return {task.name: seeded_subset(task.load(cfg.eval.split, data_dir), cfg.report.feature_examples, cfg.eval.seed,
                                     keep_order=False)
            for task in tasks}


def _report(paths: RunPaths, progress: Progress, events: RunEvents) -> None:
    from prada.reporting import build_report

    index = paths.report_index
    inputs = [p for pattern in ("eval/*/*/metrics.json", "train/*/log.jsonl", "features/*.npz")
              for p in paths.root.glob(pattern)]
    if index.exists() and inputs and max(p.stat().st_mtime for p in inputs) <= index.stat().st_mtime:
        events.note(f"report: up to date ({index})", skipped=True)
        return
    events.stage("report")
    build_report([paths.root], paths.report_dir, progress=progress)
    events.note(f"report: {index}")


def summary_table(paths: RunPaths, jobs: list[ModelJob], task_names: list[str]) -> tuple[list[str], list[list[str]]]:
    """Columns and rows of the run's accuracy table: one row per final model, one column per task
    (the source first), ``accuracy (correct/n)`` in each cell, ``-`` where not evaluated."""
    columns = ["model", *(f"{name} ({'source' if i == 0 else 'target'})" for i, name in enumerate(task_names))]
    rows = []
    for job in jobs:
        if job.step is not None:
            continue
        row = [job.name]
        for name in task_names:
            metrics_path = paths.eval_metrics(job.name, name)
            if metrics_path.exists():
                m = EvalMetrics.read(metrics_path)
                row.append(f"{100 * m.accuracy:.1f} ({m.correct}/{m.n})")
            else:
                row.append("-")
        rows.append(row)
    return columns, rows
