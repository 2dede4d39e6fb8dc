"""Evaluate a model on a task: greedy generation, answer extraction, per-question predictions and
accuracy.

    evaluate_model(model_ref, task, cfg, out_dir, prompt_style) -> EvalMetrics

writes ``out_dir/predictions.jsonl`` (one line per question: id, question, gold, output,
prediction, correct, ...) and then ``out_dir/metrics.json`` (task, split, n, correct, accuracy,
model, step, wall_s, generated_tokens, tokens_per_s, ...: a versioned ``EvalMetrics``, see
``prada.eval_metrics``). ``metrics.json`` is written last, so its presence means the evaluation
finished: an existing one is returned as is unless ``force=True`` (the run directory is the cache).

Prompt styles
-------------
``student``        Fine-tune-CoT: ``{question} ###`` (or the chat template the student was trained
                   with); greedy until ``END``/EOS; answer = first candidate after ``-->``, else the
                   last candidate (``extract_student_answer``).
``answer_only``    same prompt; answer = the first candidate (the ``ft`` method's format).
``zero_shot_cot``  an untrained model, two-stage Zero-Shot-CoT (Kojima et al. 2022): stage 1
                   ``Q: {question}\\nA: Let's think step by step.`` → rationale (``max_new_tokens``);
                   stage 2 = stage 1 + rationale + ``" \\n"`` + the task's trigger → up to 32 tokens; answer =
                   first candidate (``extract_teacher_answer``). With ``student.chat_template: true``
                   the question goes in a user turn and the assistant turn starts with
                   ``Let's think step by step.``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import torch

from prada.config import RunConfig, StudentConfig
from prada.data.example import Example
from prada.errors import EvaluationError
from prada.eval_metrics import EvalMetrics, PerQuestion
from prada.evaluation.generate import Generation, GenerationStats, OnFinished, greedy_generate
from prada.formats import (
    ANSWER_ONLY_STYLE,
    PROMPT_STYLES,
    STUDENT_STOP,
    STUDENT_STYLE,
    ZERO_SHOT_COT_TRIGGER,
    ZERO_SHOT_STYLE,
    PromptStyle,
    choice_letters,
    zero_shot_cot_prompt,
)
from prada.io import check_dir_possible, write_jsonl_atomic
from prada.progress import Progress, silent
from prada.subset import seeded_subset

logger = logging.getLogger(__name__)


ZERO_SHOT_ANSWER_TOKENS = 32
"""Stage-2 budget of Zero-Shot-CoT (as in Kojima et al.)."""
ZERO_SHOT_STAGE1_STOP = ("\nQ:",)
"""A base model that finishes its rationale often goes on with a new ``Q:``; stage 1 stops there
(the new question would otherwise sit between the rationale and the trigger)."""


class TaskLike(Protocol):
    """What evaluation needs of a ``prada.data`` task (read-only: tasks are frozen dataclasses)."""

    @property
    def name(self) -> str: ...

    @property
    def trigger(self) -> str: ...

    def load(self, split: str, data_dir: Path | None) -> list[Example]: ...


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


def select_examples(examples: Sequence[Example], max_examples: int | None, seed: int) -> list[Example]:
    """A seeded subset (in the split's order) that depends only on the split and the seed, so
    every model is scored on the same questions.

    >>> from prada.data.example import AnswerType, Category
    >>> exs = [Example(f"t/{i}", "t", Category.CUSTOM, AnswerType.NUMBER, "q", "1") for i in range(10)]
    >>> [e.id for e in select_examples(exs, 3, seed=0)] == [e.id for e in select_examples(exs, 3, seed=0)]
    True
    """
    if max_examples is not None and max_examples < 1:
        raise EvaluationError(f"eval.max_examples must be >= 1 (got {max_examples})")
    return seeded_subset(examples, max_examples, seed)


def evaluated_examples(task: Any, cfg: RunConfig) -> list[Example]:
    """The questions ``evaluate_model`` scores: ``cfg.eval.split``'s seeded ``cfg.eval.max_examples``."""
    return select_examples(task.load(cfg.eval.split, cfg.resolved_data_dir()), cfg.eval.max_examples, cfg.eval.seed)


def resolve_device(name: str) -> torch.device:
    """The torch device for ``eval.device``: ``auto`` is this process's CUDA GPU (``LOCAL_RANK``
    under ``accelerate launch``) when one is visible, else the CPU.

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if name == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise EvaluationError(f"eval.device '{name}': use 'auto', 'cpu', 'cuda' or 'cuda:N'")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise EvaluationError(f"eval.device '{name}': no CUDA device is visible; use 'auto' or 'cpu'")
    return device


def load_model_for_eval(
    model_ref: str | Path, student_cfg: StudentConfig, device: str = "auto", dtype: str = "float32",
    exact_top_logits: int = 0, decode_attention: str = "sdpa",
) -> tuple[Any, dict[str, Any]]:
    """``(Student, info)`` for a checkpoint directory, a model folder, an alias or a cached hub id,
    on ``device`` (an ``eval.device`` value), its language model's weights in ``dtype`` (an
    ``eval.dtype`` value; a prompt encoder stays fp32 and casts its output). With a dtype other
    than fp32 and ``exact_top_logits = k > 0`` (``eval.exact_top_logits``), the LM head's ``k``
    largest logits per row are recomputed in fp32 (``prada.evaluation.exact_logits``). With bf16 on
    the CPU and ``decode_attention="auto"`` (``eval.decode_attention``), decoding steps run the fused
    attention kernel (``prada.evaluation.decode_kernel``) where it can be built.

    ``info`` holds ``method`` and ``step`` from a checkpoint (None for a plain model) and the
    resolved ``dtype``. A path that does not exist, or a folder that is neither a checkpoint nor a
    model, is an ``EvaluationError``.
    """
    from prada.hardware import TORCH_DTYPES, resolve_eval_dtype, tune_allocator

    target = resolve_device(device)  # a bad value fails before the model is read
    tune_allocator()
    resolved = resolve_eval_dtype(dtype, target)
    student, info = _load_model(model_ref, student_cfg)
    student = student.to(target)
    lm = student.causal_lm
    if resolved != "float32" and exact_top_logits > 0 and lm.get_output_embeddings() is not None:
        from prada.evaluation.exact_logits import exact_top_logits as hook_exact_top_logits

        head = lm.get_output_embeddings()
        bias = getattr(head, "bias", None)
        hook_exact_top_logits(lm, head.weight.detach().float().clone(), exact_top_logits,
                              bias.detach().float().clone() if bias is not None else None)
    lm.to(TORCH_DTYPES[resolved])
    if resolved == "bfloat16" and target.type == "cpu" and decode_attention == "auto":
        from prada.evaluation.row_attention import use_decode_kernel

        use_decode_kernel(lm)
    return student, {**info, "dtype": resolved}


def _load_model(model_ref: str | Path, student_cfg: StudentConfig) -> tuple[Any, dict[str, Any]]:
    from prada.student.student import is_checkpoint, load_student, read_checkpoint_meta

    ref = str(model_ref)
    path = Path(ref).expanduser()
    if is_checkpoint(path):
        meta = read_checkpoint_meta(path)
        student = load_student(path, student_cfg)  # trust_remote_code: the caller's, never the checkpoint's
        # The checkpoint keeps its training format; the question-length limit is the caller's to set.
        student.student_cfg = dataclasses.replace(student.student_cfg,
                                                  max_question_tokens=student_cfg.max_question_tokens)
        return student, {"method": meta.get("method"), "step": meta.get("step"), "checkpoint": True, "meta": meta}
    if path.is_dir():
        if not (path / "config.json").is_file():
            hint = ""
            if (path / "checkpoints").is_dir() or (path / "log.jsonl").is_file():
                hint = f" (a training run directory: evaluate {path / 'final'} once training has finished)"
            raise EvaluationError(
                f"{path}: neither a prada checkpoint (no prada_checkpoint.json) nor a model folder "
                f"(no config.json){hint}"
            )
    elif isinstance(model_ref, Path) or ref.startswith((".", "/", "~")) or len(Path(ref).parts) > 2 or (
        path.parent != Path(".") and path.parent.exists()
    ):  # a local path that does not exist (a hub id is "org/name", without a local parent folder)
        raise EvaluationError(f"{ref}: checkpoint or model folder not found")
    return load_student(ref, student_cfg), {"method": None, "step": None, "checkpoint": False, "meta": None}


def _weights_dtype(student: Any) -> str:
    """``"float32"``, ``"bfloat16"``, ... of the language model's weights."""
    return str(student.causal_lm.get_input_embeddings().weight.dtype).removeprefix("torch.")


def _answer_type(example: Example, task: Any) -> Any:
    return getattr(task, "answer_type", None) or example.answer_type


# --------------------------------------------------------------------------------------------
# Prompts
# --------------------------------------------------------------------------------------------


def student_prompts(student: Any, examples: Sequence[Example]) -> list[list[int]]:
    """Fine-tune-CoT prompts with the formatting the student was trained with."""
    from prada.student.format import encode_questions

    encoded = encode_questions(list(examples), student.tokenizer, student.student_cfg)
    return [list(e.input_ids) for e in encoded]


def _zero_shot_stage1_texts(student: Any, examples: Sequence[Example], chat: bool) -> list[str]:
    tok = student.tokenizer
    if not chat:
        return [zero_shot_cot_prompt(e.question) for e in examples]
    if not getattr(tok, "chat_template", None):
        raise EvaluationError(
            "student.chat_template is true but the tokenizer has no chat template; set "
            "student.chat_template: false for the plain 'Q: ... A:' Zero-Shot-CoT prompt"
        )
    return [
        tok.apply_chat_template([{"role": "user", "content": e.question}], tokenize=False, add_generation_prompt=True)
        + ZERO_SHOT_COT_TRIGGER
        for e in examples
    ]


def _encode_texts(tokenizer: Any, texts: Sequence[str], chat: bool) -> list[list[int]]:
    # A chat template already carries its special tokens; a plain prompt gets the tokenizer's BOS.
    return [list(ids) for ids in tokenizer(list(texts), add_special_tokens=not chat)["input_ids"]]


def _stage2_suffix(task: Any) -> str:
    """What follows the rationale in stage 2: Kojima et al.'s ``" "`` + ``"\nTherefore, ... is"``."""
    from prada.data.tasks import STAGE2_JOIN

    trigger = getattr(task, "trigger", None)
    if not trigger:
        raise EvaluationError(f"task '{getattr(task, 'name', task)}' has no Zero-Shot-CoT answer trigger")
    return STAGE2_JOIN + trigger.lstrip()


def _cut_stop(text: str, stops: Sequence[str]) -> str:
    for s in stops:
        if s in text:
            text = text[: text.index(s)]
    return text


# --------------------------------------------------------------------------------------------
# Generation backends
# --------------------------------------------------------------------------------------------




class GenerationBackend(Protocol):
    """What evaluation needs of a generation backend: our KV-cache decoder (``_HFBackend``) or
    vLLM (``prada.evaluation.vllm_backend.VLLMBackend``). Greedy decoding of token-id prompts,
    each generation cut at the first stop string; one ``Generation`` per prompt, in order."""

    name: str
    """Recorded in ``metrics.json`` (``hf``, ``vllm``)."""

    def generate(self, prompts: list[list[int]], max_new_tokens: int, stop: Sequence[str] | None,
                 on_finished: OnFinished | None = None) -> tuple[list[Generation], GenerationStats]: ...


class _HFBackend:
    """Our batched KV-cache decoder on a loaded ``Student``."""

    name = "hf"

    def __init__(self, student: Any, batch_size: int) -> None:
        self.student = student
        self.batch_size = batch_size

    def generate(self, prompts: list[list[int]], max_new_tokens: int, stop: Sequence[str] | None,
                 on_finished: OnFinished | None = None) -> tuple[list[Generation], GenerationStats]:
        return greedy_generate(self.student, prompts, max_new_tokens=max_new_tokens, batch_size=self.batch_size,
                               stop=stop, on_finished=on_finished)


def _vllm_backend(model_ref: str | Path, info: dict[str, Any], student_cfg: StudentConfig,
                  tokenizer: Any) -> GenerationBackend:
    from prada.evaluation.vllm_backend import VLLMBackend

    return VLLMBackend.create(model_ref, info, student_cfg, tokenizer)


# --------------------------------------------------------------------------------------------
# The evaluation
# --------------------------------------------------------------------------------------------


def _run_style(backend: GenerationBackend, student: Any, items: list[tuple[Example, Any]], style: str,
               cfg: RunConfig, chat: bool, on_finished: OnFinished | None = None) -> tuple[list[dict[str, Any]], GenerationStats]:
    """Records of ``items`` — (question, its task) pairs, of one task or several — generated
    together: one stream per generation stage, whatever their tasks."""
    from prada.data.answers import extract_student_answer, extract_teacher_answer, is_correct

    tokenizer = student.tokenizer
    max_new = cfg.eval.max_new_tokens
    examples = [ex for ex, _ in items]
    records: list[dict[str, Any]] = []
    if style in (STUDENT_STYLE, ANSWER_ONLY_STYLE):
        prompts = student_prompts(student, examples)
        gens, stats = backend.generate(prompts, max_new, STUDENT_STOP, on_finished=on_finished)
        for (ex, task), g in zip(items, gens):
            atype = _answer_type(ex, task)
            pred = extract_student_answer(g.text, atype, choice_letters(ex, task, task_first=True), answer_only=style == ANSWER_ONLY_STYLE)
            records.append(_record(ex, g.text, pred, is_correct(pred, ex.answer, atype), g))
        return records, stats
    # zero_shot_cot: two stages
    stage1 = _zero_shot_stage1_texts(student, examples, chat)
    gens1, stats1 = backend.generate(_encode_texts(tokenizer, stage1, chat), max_new, ZERO_SHOT_STAGE1_STOP,
                                     on_finished=on_finished)
    rationales = [_cut_stop(g.text, ZERO_SHOT_STAGE1_STOP) for g in gens1]
    suffixes = [_stage2_suffix(task) for _, task in items]
    stage2 = [p + r + suffix for p, r, suffix in zip(stage1, rationales, suffixes)]
    gens2, stats2 = backend.generate(
        _encode_texts(tokenizer, stage2, chat), min(ZERO_SHOT_ANSWER_TOKENS, max_new), ZERO_SHOT_STAGE1_STOP,
        on_finished=on_finished,
    )
    for (ex, task), r, suffix, g1, g2 in zip(items, rationales, suffixes, gens1, gens2):
        atype = _answer_type(ex, task)
        completion = _cut_stop(g2.text, ZERO_SHOT_STAGE1_STOP)
        pred = extract_teacher_answer(completion, atype, choice_letters(ex, task, task_first=True))
        rec = _record(ex, f"{r}{suffix}{completion}", pred, is_correct(pred, ex.answer, atype), g1, g2)
        rec.update(rationale=r, answer_completion=completion)
        records.append(rec)
    stats = GenerationStats(stats1.generated_tokens + stats2.generated_tokens, stats1.seconds + stats2.seconds,
                            stats1.batches + stats2.batches)
    return records, stats


def _record(ex: Example, output: str, pred: str | None, correct: bool, *gens: Generation) -> dict[str, Any]:
    return {
        "id": ex.id,
        "question": ex.question,
        "gold": ex.answer,
        "output": output,
        "prediction": pred,
        "correct": bool(correct),
        "generated_tokens": sum(g.num_tokens for g in gens),
        "stop_reason": gens[-1].stop_reason,
    }


def evaluate_model(
    model_ref: str | Path | Any,
    task: TaskLike,
    cfg: RunConfig,
    out_dir: str | Path,
    prompt_style: PromptStyle = STUDENT_STYLE,
    *,
    force: bool = False,
    examples: Sequence[Example] | None = None,
    model_name: str | None = None,
    model_info: dict[str, Any] | None = None,
    progress: Progress | None = None,
    label: str | None = None,
) -> EvalMetrics:
    """Evaluate ``model_ref`` on ``task``'s ``cfg.eval.split`` and write predictions and metrics.

    ``model_ref``: a checkpoint directory (``train/.../final`` or a snapshot), a plain model
    (folder, alias such as ``smollm2-135m-instruct``, cached hub id) or an already loaded
    ``Student``. ``examples`` overrides the task's split (already subset). Returns the metrics;
    an existing ``out_dir/metrics.json`` is returned without work unless ``force``. ``progress``
    shows questions done, generated tokens/s and the ETA (``prada.progress``; default: silent),
    under ``label`` (default: the model's name).

    To score one model on several tasks, ``evaluate_tasks`` loads it once and decodes all the
    tasks' questions in one stream.
    """
    [metrics] = evaluate_tasks(model_ref, [task], cfg, [out_dir], prompt_style, force=force,
                               examples=None if examples is None else [examples], model_name=model_name,
                               model_info=model_info, progress=progress, label=label)
    return metrics


def evaluate_tasks(
    model_ref: str | Path | Any,
    tasks: Sequence[TaskLike],
    cfg: RunConfig,
    out_dirs: Sequence[str | Path],
    prompt_style: PromptStyle = STUDENT_STYLE,
    *,
    force: bool = False,
    examples: Sequence[Sequence[Example]] | None = None,
    model_name: str | None = None,
    model_info: dict[str, Any] | None = None,
    progress: Progress | None = None,
    label: str | None = None,
) -> list[EvalMetrics]:
    """``evaluate_model`` for several tasks (``out_dirs[i]`` is ``tasks[i]``'s), the model loaded
    once and the questions of every task still to evaluate decoded together: one stream (per
    Zero-Shot-CoT stage), so the batch stays full across tasks instead of draining at the end of
    each. Each task's files are those ``evaluate_model`` writes; its ``generation_s`` and
    ``wall_s`` are its share, by generated tokens, of the shared generation. Tasks whose
    ``metrics.json`` exists are returned as they are (unless ``force``)."""
    if len(out_dirs) != len(tasks) or (examples is not None and len(examples) != len(tasks)):
        raise ValueError("evaluate_tasks: one out_dir (and one examples list, if given) per task")
    dirs = [check_dir_possible(Path(d)) for d in out_dirs]  # a file in the way fails now, not after generating
    done = {i: EvalMetrics.read(d / "metrics.json") for i, d in enumerate(dirs)
            if (d / "metrics.json").is_file() and not force}
    for i in done:
        logger.info("%s exists: evaluation skipped", dirs[i] / "metrics.json")
    todo = [i for i in range(len(tasks)) if i not in done]
    if not todo:
        return [done[i] for i in range(len(tasks))]
    if prompt_style not in PROMPT_STYLES:
        raise EvaluationError(f"prompt style '{prompt_style}': valid styles are {list(PROMPT_STYLES)}")
    started = time.perf_counter()
    per_task = {i: list(examples[i]) if examples is not None else evaluated_examples(tasks[i], cfg) for i in todo}
    for i in todo:
        if not per_task[i]:
            raise EvaluationError(f"task '{tasks[i].name}': the {cfg.eval.split} split has no examples")

    student: Any  # a loaded Student, or a stand-in with its interface (tests)
    if hasattr(model_ref, "causal_lm") and hasattr(model_ref, "tokenizer"):
        student = model_ref
        info = dict(model_info or {"method": None, "step": None, "checkpoint": False, "meta": None})
        ref_text = model_name or type(model_ref).__name__
    else:
        # vLLM generates on its own GPU copy; the student is then only read for its format and prompts.
        device = "cpu" if cfg.eval.backend == "vllm" else cfg.eval.device
        student, info = load_model_for_eval(model_ref, cfg.student, device, cfg.eval.dtype,
                                            cfg.eval.exact_top_logits, cfg.eval.decode_attention)
        ref_text = str(model_ref)
    chat = bool(student.student_cfg.chat_template) if prompt_style != ZERO_SHOT_STYLE else bool(cfg.student.chat_template)
    if prompt_style == ZERO_SHOT_STYLE and bool(getattr(student, "num_virtual_tokens", 0)):
        logger.warning("zero_shot_cot on a P-Tuning checkpoint: its virtual tokens are used as trained")

    if cfg.eval.backend == "vllm":
        vllm_ref = model_ref if isinstance(model_ref, (str, Path)) else model_name
        if vllm_ref is None:
            raise EvaluationError("eval.backend 'vllm' needs the model's path (model_name=...), not only a loaded model")
        backend: GenerationBackend = _vllm_backend(vllm_ref, info, student.student_cfg, student.tokenizer)
    else:
        backend = _HFBackend(student, cfg.eval.batch_size)

    items = [(ex, tasks[i]) for i in todo for ex in per_task[i]]
    # Zero-Shot-CoT generates twice per question (rationale, then answer): two prompts each.
    passes = 2 if prompt_style == ZERO_SHOT_STYLE else 1
    names = ", ".join(tasks[i].name for i in todo)
    with (progress or silent()).stage(f"evaluate {label or model_name or ref_text} on {names}", len(items) * passes,
                                      "questions" if passes == 1 else "prompts") as stage:
        records, stats = _run_style(backend, student, items, prompt_style, cfg, chat,
                                    on_finished=lambda gens: stage.advance(len(gens), tokens=sum(g.num_tokens for _, g in gens)))
        parts = _split(records, [len(per_task[i]) for i in todo])  # each task's records, in `todo` order
        scores = [(tasks[i].name, sum(r["correct"] for r in part), len(part)) for i, part in zip(todo, parts)]
        stage.close(", ".join(f"{'accuracy' if len(scores) == 1 else name} {100 * c / n:.1f}% ({c}/{n})"
                              for name, c, n in scores))
    wall = time.perf_counter() - started
    common = dict(model=ref_text, method=info["method"], step=info["step"], prompt_style=prompt_style,
                  chat_template=chat, backend=backend.name,
                  device=None if cfg.eval.backend == "vllm" else str(student.device),  # vLLM picks its own GPU
                  dtype=None if cfg.eval.backend == "vllm" else _weights_dtype(student),
                  batch_size=cfg.eval.batch_size, max_new_tokens=cfg.eval.max_new_tokens,
                  max_examples=cfg.eval.max_examples, subset_seed=cfg.eval.seed)
    for i, part in zip(todo, parts):
        tokens = sum(r["generated_tokens"] for r in part)
        share = tokens / stats.generated_tokens if stats.generated_tokens else len(part) / len(records)
        n, n_correct = len(part), sum(r["correct"] for r in part)
        generation_s = stats.seconds * share
        metrics = EvalMetrics(
            task=tasks[i].name, split=cfg.eval.split, n=n, correct=n_correct, accuracy=n_correct / n,
            no_answer=sum(r["prediction"] is None for r in part), **common,
            generated_tokens=tokens, generation_s=round(generation_s, 3),
            tokens_per_s=round(tokens / generation_s, 2) if generation_s > 0 else 0.0,
            wall_s=round(wall * share, 3),
            # Per-question outcomes (ids only, no dataset text), so reports and their bootstrap
            # intervals can be rebuilt from metrics files alone.
            per_question=PerQuestion([r["id"] for r in part], [int(r["correct"]) for r in part]),
        )
        write_jsonl_atomic(dirs[i] / "predictions.jsonl", part)
        metrics.write(dirs[i] / "metrics.json")  # last: its presence marks a finished evaluation
        logger.info("%s on %s: %d/%d = %.1f%%", ref_text, tasks[i].name, n_correct, n, 100 * metrics.accuracy)
        done[i] = metrics
    return [done[i] for i in range(len(tasks))]


def _split(records: list[dict[str, Any]], sizes: list[int]) -> list[list[dict[str, Any]]]:
    """``records`` cut into consecutive parts of ``sizes``."""
    parts, start = [], 0
    for size in sizes:
        parts.append(records[start: start + size])
        start += size
    return parts
