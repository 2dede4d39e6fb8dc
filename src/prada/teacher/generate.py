"""Stage 1: the teacher writes rationales for the source task's train questions.

``run_teacher_stage(cfg, out_dir)``:

1. loads the source task's train split (a seeded subset of ``data.max_source_examples``);
2. stage 1 — asks the teacher for D = ``teacher.samples`` rationales per question (sample 0 greedy,
   samples 1..D-1 at ``teacher.temperature``), skipping every sample already in ``cache.jsonl``;
3. stage 2 — asks for the answer of each rationale (greedy; skipped for few-shot rationales that
   already say ``The answer is ...``), again skipping cached requests;
4. rebuilds ``corpus.jsonl`` from the cache alone — correct, non-empty, de-duplicated rationales in
   (example id, sample index) order, no timing fields — and ``samples/<task>.jsonl``, every answered
   sample (right or wrong) in the recorded-teacher format, which ``teacher.backend: replay`` with
   ``teacher.replay_dir: <out_dir>/samples`` replays (all D samples per question); then writes
   ``summary.json``.

Every completed request is in the cache before the next step needs it, so a run killed at any
moment resumes where it stopped, and an interrupted + resumed run writes the same corpus, byte for
byte, as an uninterrupted one (given a deterministic teacher).
"""

from __future__ import annotations

import logging
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from prada.config import RunConfig, TeacherConfig
from prada.data.example import AnswerType, Example
from prada.errors import DataError, RunDirError, TeacherError
from prada.formats import FEW_SHOT_PROMPT, choice_letters
from prada.io import write_json_atomic, write_jsonl_atomic
from prada.redact import redact_values
from prada.subset import seeded_subset
from prada.teacher.backends import BackendContext, Request, Result, Sampling, TeacherBackend, get_backend
from prada.teacher.cache import TeacherCache, sample_key
from prada.teacher.prompts import PromptBuilder, clean_rationale, load_few_shot_exemplars, normalise_rationale

logger = logging.getLogger(__name__)

CORPUS_NAME = "corpus.jsonl"
CACHE_NAME = "cache.jsonl"
SUMMARY_NAME = "summary.json"
SAMPLES_DIR = "samples"
"""``out_dir/samples/<task>.jsonl``: every answered sample, replayable (``teacher.replay_dir``)."""
SEED_STRIDE = 1 << 20
"""Sample ``i`` of teacher seed ``s`` is drawn with seed ``s * SEED_STRIDE + i``."""

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: samples done so far in ``stage`` ("rationale" | "answer")."""


def natural_key(text: str) -> list[Any]:
    """Sort key that orders ``multiarith/2`` before ``multiarith/10``.

    >>> sorted(["t/10", "t/2", "t/1"], key=natural_key)
    ['t/1', 't/2', 't/10']
    """
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", text)]


def source_subset(examples: Sequence[Example], k: int | None, seed: int, task: str) -> list[Example]:
    """The source questions sent to the teacher: ``prada.subset.seeded_subset`` keyed by the task
    and ``data.seed`` (string-seeded: identical on every machine), in input order."""
    if k is not None and k < 1:
        raise TeacherError(f"data.max_source_examples must be >= 1, got {k}")
    return seeded_subset(examples, k, f"prada-teacher-subset/{task}/{seed}")


# --------------------------------------------------------------------------------------------
# Planning
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """Prompts, sampling parameters and keys of every sample, computed from the config alone."""

    backend: str
    model: str
    builder: PromptBuilder
    tcfg: TeacherConfig

    @property
    def greedy(self) -> Sampling:
        return Sampling(0.0, 1.0, self.tcfg.max_rationale_tokens, self.builder.stop)

    @property
    def sampled(self) -> Sampling:
        return Sampling(self.tcfg.temperature, self.tcfg.top_p, self.tcfg.max_rationale_tokens, self.builder.stop)

    @property
    def answer_sampling(self) -> Sampling:
        return Sampling(0.0, 1.0, self.tcfg.max_answer_tokens)

    def rationale_sampling(self, index: int) -> Sampling:
        return self.greedy if index == 0 else self.sampled

    def seed(self, index: int) -> int:
        return self.tcfg.seed * SEED_STRIDE + index

    def rationale_key(self, ex: Example, index: int) -> str:
        return sample_key(self.backend, self.model, self.builder.rationale_prompt(ex.question),
                          self.rationale_sampling(index), index, self.seed(index))

    def answer_prompt(self, ex: Example, rationale_completion: str) -> Any:
        return self.builder.answer_prompt(ex.question, rationale_completion)

    def answer_key(self, ex: Example, rationale_completion: str) -> str:
        # Greedy, so its text depends on the prompt only: identical rationales share one request.
        return sample_key(self.backend, self.model, self.answer_prompt(ex, rationale_completion),
                          self.answer_sampling, 0, None)


def plan_rationale_requests(plan: Plan, examples: Sequence[Example], samples: int, cache: TeacherCache,
                            max_n: int) -> list[Request]:
    """Requests for every rationale sample not in the cache; consecutive sampled indices share a
    request (up to ``max_n`` samples) with consecutive seeds."""
    out: list[Request] = []
    for ex in examples:
        prompt = plan.builder.rationale_prompt(ex.question)
        missing = [i for i in range(samples) if plan.rationale_key(ex, i) not in cache]
        runs: list[list[int]] = []
        for i in missing:
            if i == 0:
                runs.append([0])
            elif runs and runs[-1][-1] == i - 1 and runs[-1][0] != 0 and len(runs[-1]) < max_n:
                runs[-1].append(i)
            else:
                runs.append([i])
        for run in runs:
            out.append(Request(
                stage="rationale",
                example=ex,
                prompt=prompt,
                sampling=plan.rationale_sampling(run[0]),
                sample_indices=tuple(run),
                keys=tuple(plan.rationale_key(ex, i) for i in run),
                seeds=tuple(plan.seed(i) for i in run),
            ))
    return out


def plan_answer_requests(plan: Plan, examples: Sequence[Example], samples: int, cache: TeacherCache) -> list[Request]:
    """One greedy request per distinct stage-2 prompt whose rationale is cached and whose answer is not."""
    out: list[Request] = []
    seen: set[str] = set()
    for ex in examples:
        for i in range(samples):
            hit = cache.get(plan.rationale_key(ex, i))
            if hit is None or plan.builder.inline_answer(hit.text) is not None:
                continue
            key = plan.answer_key(ex, hit.text)
            if key in cache or key in seen:
                continue
            seen.add(key)
            out.append(Request(stage="answer", example=ex, prompt=plan.answer_prompt(ex, hit.text),
                               sampling=plan.answer_sampling, sample_indices=(0,), keys=(key,), seeds=(0,)))
    return out


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------


def _run(backend: TeacherBackend, requests: list[Request], cache: TeacherCache, stage: str,
         progress: Progress | None, counters: dict[str, int]) -> None:
    total = sum(r.n for r in requests)
    done = 0
    if progress:
        progress(stage, 0, total)
    if not requests:
        return

    def on_result(result: Result) -> None:
        nonlocal done
        cache.add(result, backend.name, backend.model)
        counters["requests"] += 1
        counters["failed_requests"] += not result.ok
        done += result.request.n
        if progress:
            progress(stage, done, total)

    backend.generate(requests, on_result)


def _check_out_dir(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except OSError as e:
        raise RunDirError(f"cannot write the teacher outputs to {out_dir}: {e.strerror or e}") from None
    cache = out_dir / CACHE_NAME
    if cache.exists() and not cache.is_file():
        raise RunDirError(f"{cache} exists and is not a file")


def run_teacher_stage(
    cfg: RunConfig,
    out_dir: str | Path,
    *,
    split: str = "train",
    task: Any = None,
    backend: TeacherBackend | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run stage 1 into ``out_dir`` (``cache.jsonl``, ``corpus.jsonl``, ``summary.json``); return the summary.

    ``task`` / ``backend`` replace the ones the config names (tests, notebooks). Raises
    ``TeacherError`` / ``DataError`` / ``RunDirError`` for unusable input before touching the cache.
    """
    from prada.data import get_task

    started = time.perf_counter()
    tcfg = cfg.teacher
    out_dir = Path(out_dir)
    data_dir = cfg.resolved_data_dir()

    # -- inputs (every check before the cache is touched) -------------------------------------------
    task = task or get_task(cfg.data.source, cfg.data)
    if split not in task.splits():
        raise TeacherError(
            f"task '{task.name}' has no '{split}' split (splits: {list(task.splits())}); the teacher needs "
            "the labeled train questions of the source task"
        )
    examples = task.load(split, data_dir)
    if not examples:
        raise DataError(f"task '{task.name}': the {split} split is empty")
    examples = source_subset(examples, cfg.data.max_source_examples, cfg.data.seed, task.name)
    examples.sort(key=lambda ex: natural_key(ex.id))
    if len({ex.id for ex in examples}) != len(examples):
        raise DataError(f"task '{task.name}': duplicate example ids in the {split} split")
    exemplars = load_few_shot_exemplars(data_dir, task.name) if tcfg.prompt == FEW_SHOT_PROMPT else ""
    builder = PromptBuilder(style=tcfg.prompt, trigger=task.trigger, chat=tcfg.chat, exemplars=exemplars)
    if backend is None:
        backend = get_backend(tcfg, BackendContext(task=task.name, trigger=task.trigger, data_dir=data_dir))
    samples = tcfg.samples
    try:
        if backend.max_samples is not None and samples > backend.max_samples:
            raise TeacherError(
                f"teacher.backend={backend.name} gives {backend.max_samples} sample(s) per question, but "
                f"teacher.samples={samples}; set teacher.samples={backend.max_samples} or use a live teacher"
            )
        # A backend may refuse questions it can never answer (gold: no rationale), before any write.
        check_examples = getattr(backend, "check_examples", None)
        if check_examples is not None:
            check_examples(examples)
        _check_out_dir(out_dir)
    except BaseException:
        backend.close()
        raise
    plan = Plan(backend=backend.name, model=backend.model, builder=builder, tcfg=tcfg)
    max_n = max(1, min(backend.max_n, tcfg.samples)) if tcfg.use_n else 1

    # -- generation --------------------------------------------------------------------------------
    cache = TeacherCache(out_dir / CACHE_NAME)
    cached_at_start = len(cache)
    counters = {"requests": 0, "failed_requests": 0}
    records_before = len(cache.records)
    try:
        cache.open()
        stage1 = plan_rationale_requests(plan, examples, samples, cache, max_n)
        logger.info("teacher: %d questions x %d samples; %d rationale requests to send (%d samples cached)",
                    len(examples), samples, len(stage1), cached_at_start)
        generation_started = time.perf_counter()  # after the model load: generation alone
        _run(backend, stage1, cache, "rationale", progress, counters)
        stage2 = plan_answer_requests(plan, examples, samples, cache)
        _run(backend, stage2, cache, "answer", progress, counters)
        generation_s = time.perf_counter() - generation_started
    finally:
        try:
            cache.close()
        finally:
            backend.close()

    # -- corpus and summary (from the cache alone) --------------------------------------------------
    corpus, stats, answered = assemble_corpus(plan, examples, samples, cache, task,
                                              gold_answers=backend.gold_answers)
    write_jsonl_atomic(out_dir / CORPUS_NAME, corpus)
    samples_path = out_dir / SAMPLES_DIR / f"{task.name}.jsonl"
    samples_path.parent.mkdir(exist_ok=True)
    write_jsonl_atomic(samples_path, answered)
    usage = cache.usage()
    run_usage = TeacherCache.tally(cache.records[records_before:])
    wall_s = time.perf_counter() - started
    summary = {
        "task": task.name,
        "split": split,
        "backend": backend.name,
        "model": backend.model,
        "prompt": tcfg.prompt,
        "chat": tcfg.chat,
        "samples_per_question": samples,
        **stats,
        "complete": stats["failed_samples"] == 0,
        "usage": usage,
        "cost_usd": round(cost(usage, tcfg), 6),
        "this_run": {
            "requests": counters["requests"],
            "failed_requests": counters["failed_requests"],
            "samples_cached_at_start": cached_at_start,
            "prompt_tokens": run_usage["prompt_tokens"],
            "completion_tokens": run_usage["completion_tokens"],
            "cost_usd": round(cost(run_usage, tcfg), 6),
            "wall_s": round(wall_s, 3),
            "generation_s": round(generation_s, 3),
            "completion_tokens_per_s": (round(run_usage["completion_tokens"] / generation_s, 2)
                                        if generation_s > 0 else None),
        },
        "files": {"corpus": str(out_dir / CORPUS_NAME), "cache": str(out_dir / CACHE_NAME),
                  "samples": str(samples_path)},
        "teacher_config": redact_values(asdict(tcfg)),  # no credential from a base_url
        "max_source_examples": cfg.data.max_source_examples,
    }
    write_json_atomic(out_dir / SUMMARY_NAME, summary)
    logger.info(
        "teacher: %d/%d questions (%.1f%%) have >= 1 correct rationale; %.2f kept rationales per question",
        stats["questions_with_correct"], stats["questions"], stats["yield_pct"], stats["mean_correct_per_question"],
    )
    if stats["failed_samples"]:
        logger.warning("teacher: %d samples failed (see the error records in %s); re-run to retry them",
                       stats["failed_samples"], out_dir / CACHE_NAME)
    return summary


def cost(usage: dict[str, int], tcfg: TeacherConfig) -> float:
    """Estimated cost in the currency of ``teacher.price_per_1k_*``."""
    return (usage["prompt_tokens"] * tcfg.price_per_1k_prompt_tokens
            + usage["completion_tokens"] * tcfg.price_per_1k_completion_tokens) / 1000.0


# --------------------------------------------------------------------------------------------
# Assembly
# --------------------------------------------------------------------------------------------


def assemble_corpus(
    plan: Plan, examples: Sequence[Example], samples: int, cache: TeacherCache, task: Any,
    *, gold_answers: bool = False,
) -> tuple[list[dict[str, Any]], dict[str, Any], list[dict[str, Any]]]:
    """The corpus records (correct, non-empty, de-duplicated; sorted by example id then sample),
    the yield statistics, and every answered sample as a recorded-teacher record (``question``,
    ``rationale`` = the raw stage-1 completion, ``answer_completion``, ``gold``, ``sample_index``,
    provenance) that the ``replay`` backend replays. Reads nothing but the cache."""
    from prada.data.answers import extract_teacher_answer, is_correct
    from prada.data.teacher_corpus import remap_choice

    corpus: list[dict[str, Any]] = []
    answered: list[dict[str, Any]] = []
    teacher = {"backend": plan.backend, "model": plan.model, "prompt": plan.builder.style, "chat": plan.builder.chat}
    n_answered = n_correct = n_dup = n_empty = n_no_answer = n_failed = n_greedy_correct = 0
    with_correct = 0
    failed_ids: list[str] = []
    for ex in sorted(examples, key=lambda e: natural_key(e.id)):
        kept: set[str] = set()
        for i in range(samples):
            hit = cache.get(plan.rationale_key(ex, i))
            if hit is None:
                n_failed += 1
                failed_ids.append(f"{ex.id}#{i}")
                continue
            inline = plan.builder.inline_answer(hit.text)
            answer_prompt = None
            meta = hit.record.get("meta") or {}
            if inline is not None:
                answer_completion = inline
            else:
                ans = cache.get(plan.answer_key(ex, hit.text))
                if ans is None:
                    n_failed += 1
                    failed_ids.append(f"{ex.id}#{i}")
                    continue
                answer_prompt = plan.answer_prompt(ex, hit.text)
                answer_completion = plan.builder.answer_completion(ans.text)
                meta = ans.record.get("meta") or meta
            n_answered += 1
            if gold_answers:
                prediction: str | None = ex.answer
            else:
                prediction = extract_teacher_answer(answer_completion, ex.answer_type, choice_letters(ex, task))
                if ex.answer_type is AnswerType.CHOICE and meta.get("recorded_question"):
                    prediction = remap_choice(prediction, meta["recorded_question"], ex)
            n_no_answer += prediction is None
            correct = is_correct(prediction, ex.answer, ex.answer_type)
            sampling = {**plan.rationale_sampling(i).to_dict(), **({"seed": plan.seed(i)} if i > 0 else {})}
            record = {
                "example_id": ex.id,
                "dataset": ex.dataset,
                "question": ex.question,
                "gold": ex.answer,
                "sample_index": i,
                "rationale": hit.text,
                "answer_completion": answer_completion,
                "prediction": prediction,
                "correct": correct,
                "kept": False,
                "teacher": teacher,
                "sampling": sampling,
            }
            answered.append(record)
            if not correct:
                continue
            n_correct += 1
            n_greedy_correct += i == 0
            rationale = clean_rationale(hit.text, plan.builder.style)
            if not rationale:
                n_empty += 1
                continue
            norm = normalise_rationale(rationale)
            if norm in kept:
                n_dup += 1
                continue
            kept.add(norm)
            record["kept"] = True
            corpus.append({
                "example_id": ex.id,
                "dataset": ex.dataset,
                "question": ex.question,
                "answer": ex.answer,
                "rationale": rationale,
                "prediction": prediction,
                "correct": True,
                "sample_index": i,
                "teacher": teacher,
                "sampling": sampling,
                "prompts": {"rationale": _jsonable(plan.builder.rationale_prompt(ex.question)),
                            "answer": _jsonable(answer_prompt)},
                "raw": {"rationale_completion": hit.text, "answer_completion": answer_completion},
            })
        with_correct += bool(kept)
    n_q = len(examples)
    stats = {
        "questions": n_q,
        "questions_with_correct": with_correct,
        "yield_pct": round(100.0 * with_correct / n_q, 2) if n_q else 0.0,
        "mean_correct_per_question": round(len(corpus) / n_q, 4) if n_q else 0.0,
        "kept": len(corpus),
        "samples": n_q * samples,
        "samples_answered": n_answered,
        "samples_correct": n_correct,
        "greedy_correct": n_greedy_correct,
        "greedy_accuracy_pct": round(100.0 * n_greedy_correct / n_q, 2) if n_q else 0.0,
        "samples_no_answer": n_no_answer,
        "duplicates_dropped": n_dup,
        "empty_rationales_dropped": n_empty,
        "failed_samples": n_failed,
        "failed_examples": failed_ids[:50],
    }
    return corpus, stats, answered


def _jsonable(prompt: Any) -> Any:
    if prompt is None or isinstance(prompt, str):
        return prompt
    return [dict(m) for m in prompt]
