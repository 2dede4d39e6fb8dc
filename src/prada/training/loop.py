"""The training loop of every method (``ft``, ``ft_cot``, ``ptuning_cot``, ``dann_cot``, ``prada``).

One optimizer step:

    λ      = dann_lambda(step, max_steps, λ_max, γ)                  (0 for methods without adversary)
    repeat grad_accum times (gradients synchronised across processes on the last one only):
        source  = next source batch      (question ### rationale --> answer END)          domain 0
        targets = next target questions (as many as source ones, shared out over the targets
                  in rotation; questions only)                     domain 1 (binary) or 1..K
        L_y, f_src = Student(source)              f_tgt = Student(targets).features
        L_d    = mean_src CE + mean_tgt CE  of  classifier(GRL_λ([f_src; f_tgt]))
        total  = L_y + w · L_d
        backward(total / grad_accum)
    clip the student's and the classifier's gradients separately; optimizer step; LR step (the
    student on train.lr_schedule, the classifier on adversarial.classifier_schedule); log; maybe
    checkpoint

See ``docs/training.md`` for the objective's mapping onto the paper's saddle point, the data order,
precision, and the checkpoint/resume semantics.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from prada.student.student import Student

from prada.adversarial import DomainClassifier, LossOutput, dann_lambda, prada_objective
from prada.config import RunConfig, check_method, config_changes, dump_yaml, to_dict
from prada.errors import ConfigError, TrainingError
from prada.hardware import describe, resolve_attention, resolve_compile, resolve_mixed_precision, tune_allocator
from prada.io import (
    JsonlAppender,
    atomic_dir,
    read_jsonl,
    write_jsonl_atomic,
    write_text_atomic,
)
from prada.methods import METHOD_SPECS, MethodSpec, method_spec
from prada.progress import Progress, silent
from prada.training import checkpoint as ckpt
from prada.training.data import TrainingData, load_training_data
from prada.training.streams import IndexStream, rotating_shares
from prada.training.summary import TrainSummary

logger = logging.getLogger(__name__)

CLASSIFIER_STATE = "domain_classifier"


# ============================================================================================
# The module that one DDP forward runs: student (+ classifier) → LossOutput
# ============================================================================================


class Trainee(nn.Module):
    """Student + optional domain classifier; ``forward`` returns the objective of one micro-batch.

    Both passes happen inside one ``forward`` so that DDP sees one forward per backward.
    """

    def __init__(self, student: Student, classifier: DomainClassifier | None, domain_loss_weight: float,
                 pooling: str = "question_mean", domains: str = "binary") -> None:
        super().__init__()
        self.student: Student = student
        self.classifier = classifier
        self.domain_loss_weight = domain_loss_weight
        self.pooling = pooling
        self.domains = domains

    def forward(
        self,
        source: dict[str, torch.Tensor],
        target: dict[str, torch.Tensor] | None = None,
        target_sizes: list[int] | None = None,
        lam: float = 0.0,
    ) -> LossOutput:
        src = self.student(**source, pooling=self.pooling)  # lm_loss (), features (Bs, D)
        if self.classifier is None or target is None:
            return prada_objective(src.lm_loss)
        # All targets' questions in one pass; labels=None → no LM loss, features only.
        tgt = self.student(input_ids=target["input_ids"], attention_mask=target["attention_mask"],
                           question_mask=target["question_mask"], pooling=self.pooling)
        features_targets = list(tgt.features.split(target_sizes))  # K × (Bt_k, D), some maybe empty
        return prada_objective(src.lm_loss, src.features, features_targets, self.classifier,
                               lam=lam, domain_loss_weight=self.domain_loss_weight, domains=self.domains)


# ============================================================================================
# Setup helpers (validation, model, data, optimizer)
# ============================================================================================


def validate_inputs(cfg: RunConfig, method: str) -> MethodSpec:
    """Checks that need no model or data; raise before any work. The config itself was validated
    when it was built (``prada.config``): only what depends on ``method`` and the machine is left."""
    check_method(cfg, method)
    spec = method_spec(method)
    if cfg.train.backbone == "frozen" and not spec.prompt_encoder:
        raise TrainingError(
            f"method '{method}' with train.backbone=frozen has nothing to train (no prompt encoder); "
            "use train.backbone=lora or full, or a method with a prompt encoder "
            f"({', '.join(m for m, s in METHOD_SPECS.items() if s.prompt_encoder)})"
        )
    if cfg.train.mixed_precision == "fp16" and not torch.cuda.is_available():
        raise ConfigError("train.mixed_precision=fp16 needs a CUDA GPU; use 'no' (or 'bf16') on CPU")
    return spec


def build_student(cfg: RunConfig, spec: MethodSpec):
    """The student of ``spec`` at backbone mode ``cfg.train.backbone`` (+ its tokenizer)."""
    from prada.student.student import build_student as _build

    student = _build(cfg, prompt_encoder=spec.prompt_encoder)
    apply_memory_options(student, cfg)
    return student, student.tokenizer


def apply_memory_options(student, cfg: RunConfig) -> None:
    if cfg.train.gradient_checkpointing:
        lm = student.causal_lm
        kwargs = {"use_reentrant": False}
        if hasattr(lm, "activation_checkpointing_enable"):  # transformers >= 5
            lm.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def _context_length(student) -> int | None:
    return getattr(student.causal_lm.config, "max_position_embeddings", None)


def clamp_max_length(cfg: RunConfig, spec: MethodSpec, context: int | None) -> RunConfig:
    """Longer-than-context sequences are truncated: ``cfg`` with ``student.max_length`` clamped to
    the model's context (less the virtual tokens), with a warning; ``cfg`` itself when it fits."""
    if context is None:
        return cfg
    virtual = cfg.prompt_encoder.num_virtual_tokens if spec.prompt_encoder else 0
    if cfg.student.max_length + virtual > context:
        new = context - virtual
        logger.warning(
            "student.max_length=%d (+%d virtual tokens) exceeds the model's context of %d tokens; "
            "training sequences are truncated to %d tokens (their completions' ends are cut)",
            cfg.student.max_length, virtual, context, new,
        )
        return dataclasses.replace(cfg, student=dataclasses.replace(cfg.student, max_length=new))
    return cfg


def encode_data(data: TrainingData, tokenizer, cfg: RunConfig, spec: MethodSpec):
    from prada.student.format import encode_questions, encode_train

    source = encode_train(data.source, tokenizer, cfg.student, answer_only=spec.answer_only)
    targets = {name: encode_questions(items, tokenizer, cfg.student) for name, items in data.targets.items()}
    return source, targets


def param_groups(student, classifier: nn.Module | None, cfg: RunConfig) -> list[dict[str, Any]]:
    """Separate learning rates: backbone (train.lr), prompt encoder, domain classifier."""
    lrs = {
        "backbone": cfg.train.lr,
        "prompt_encoder": cfg.prompt_encoder.lr or cfg.train.lr,
        "classifier": cfg.adversarial.classifier_lr or cfg.train.lr,
    }
    groups = {name: list(params) for name, params in student.trainable_parameters().items()}
    if classifier is not None:
        groups["classifier"] = list(classifier.parameters())
    return [
        {"name": name, "params": params, "lr": lrs[name], "weight_decay": cfg.train.weight_decay}
        for name, params in groups.items()
        if params
    ]


def make_optimizer(groups: list[dict[str, Any]], *, fused: bool) -> torch.optim.Optimizer:
    """AdamW over ``groups``. ``fused``: one kernel per step for all parameters (fastest; differs
    from the reference update in the last bit). Otherwise the multi-tensor ``foreach`` update,
    bit-identical to the reference per-tensor loop."""
    if fused:
        try:
            return torch.optim.AdamW(groups, fused=True)
        except (RuntimeError, ValueError):  # a device or dtype without the fused kernel
            pass
    return torch.optim.AdamW(groups, foreach=True)


class ClassifierLR:
    """The domain classifier's LR multiplier at optimizer step ``step`` (``adversarial.classifier_schedule``).

    ``constant``: linear warm-up over the student's warm-up steps, then 1. ``dann``: Ganin &
    Lempitsky's annealing 1/(1+10p)^0.75, p = step / total steps (no warm-up). Neither reaches 0.

    >>> ClassifierLR("constant", warmup=2, total=10)(1), ClassifierLR("constant", 2, 10)(9)
    (0.5, 1.0)
    >>> round(ClassifierLR("dann", 0, 10)(10), 4)
    0.1656
    """

    def __init__(self, schedule: str, warmup: int, total: int) -> None:
        self.schedule, self.warmup, self.total = schedule, warmup, total

    def __call__(self, step: int) -> float:
        if self.schedule == "dann":
            return 1.0 / (1.0 + 10.0 * min(step / max(1, self.total), 1.0)) ** 0.75
        return min(1.0, step / self.warmup) if self.warmup > 0 else 1.0


def make_scheduler(optimizer, cfg: RunConfig):
    """One LambdaLR: the student's groups follow ``train.lr_schedule`` (transformers' definition),
    the classifier's group ``adversarial.classifier_schedule``."""
    from torch.optim.lr_scheduler import LambdaLR
    from transformers import get_scheduler

    name = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}[cfg.train.lr_schedule]
    warmup = int(round(cfg.train.warmup_ratio * cfg.train.max_steps))
    probe = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)  # only to get the multiplier
    student = get_scheduler(name, probe, num_warmup_steps=warmup, num_training_steps=cfg.train.max_steps).lr_lambdas[0]
    classifier = ClassifierLR(cfg.adversarial.classifier_schedule, warmup, cfg.train.max_steps)
    return LambdaLR(optimizer, [classifier if g.get("name") == "classifier" else student for g in optimizer.param_groups])


def clip_gradients(trainee: Trainee, cfg: RunConfig, accelerator) -> tuple[float | None, float | None]:
    """Clip the student's and the classifier's gradients separately; their norms (None: no clipping).

    One joint norm would let the classifier's gradient shrink the student's step in the adversarial
    runs only. The student's parameters are taken in module order, as one clip over the whole
    model took them before there was a classifier to separate (bit-identical for the others)."""
    if accelerator.scaler is not None:  # fp16: unscale once, before both norms
        accelerator.unscale_gradients()
    clip = torch.nn.utils.clip_grad_norm_
    student_norm = clip(list(trainee.student.parameters()), cfg.train.max_grad_norm) if cfg.train.max_grad_norm > 0 else None
    classifier_norm = None
    if trainee.classifier is not None and cfg.adversarial.classifier_max_grad_norm > 0:
        classifier_norm = clip(list(trainee.classifier.parameters()), cfg.adversarial.classifier_max_grad_norm)
    return (None if student_norm is None else float(student_norm),
            None if classifier_norm is None else float(classifier_norm))


@dataclass
class Batches:
    """Source and target streams of this process, and the collation of their batches."""

    source: list[Any]
    targets: dict[str, list[Any]]
    source_stream: IndexStream
    target_streams: dict[str, IndexStream]
    pad_token_id: int
    target_batch_size: int = 0
    """Target questions per micro-batch, shared out over the targets by ``rotating_shares``."""
    draws: int = 0
    """Micro-batches drawn so far (the rotation's turn)."""

    def next(self, device) -> tuple[dict, dict | None, list[int], int]:
        """(source batch, target batch or None, per-target sizes, non-pad tokens)."""
        from prada.student.format import collate_questions, collate_train

        src = collate_train([self.source[i] for i in self.source_stream.next_batch()], self.pad_token_id)
        tokens = int(src["attention_mask"].sum())
        if not self.target_streams:
            return _to(src, device), None, [], tokens
        shares = rotating_shares(self.target_batch_size, len(self.target_streams), self.draws)
        self.draws += 1
        picked = [[self.targets[n][i] for i in s.next_batch(k)] for (n, s), k in zip(self.target_streams.items(), shares)]
        tgt = collate_questions([e for group in picked for e in group], self.pad_token_id)
        tokens += int(tgt["attention_mask"].sum())
        return _to(src, device), _to(tgt, device), [len(g) for g in picked], tokens

    def state_dict(self) -> dict[str, Any]:
        return {"source": self.source_stream.state_dict(), "draws": self.draws,
                "targets": {n: s.state_dict() for n, s in self.target_streams.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.source_stream.load_state_dict(state["source"])
        self.draws = int(state.get("draws", 0))
        if set(state["targets"]) != set(self.target_streams):
            raise TrainingError(f"checkpoint targets {sorted(state['targets'])} differ from data.targets")
        for name, stream in self.target_streams.items():
            stream.load_state_dict(state["targets"][name])


def _to(batch: dict[str, torch.Tensor], device) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in batch.items()}


def make_batches(source, targets, cfg: RunConfig, seed: int, pad_token_id: int, accelerator) -> Batches:
    world, rank = accelerator.num_processes, accelerator.process_index
    src_stream = IndexStream(len(source), cfg.train.batch_size, seed, num_processes=world, process_index=rank)
    per_step = cfg.adversarial.target_batch_size or cfg.train.batch_size
    tgt_streams = {
        name: IndexStream(len(items), per_step, seed * 7919 + 1 + k, num_processes=world, process_index=rank)
        for k, (name, items) in enumerate(targets.items())
    }
    return Batches(source, targets, src_stream, tgt_streams, pad_token_id, target_batch_size=per_step)


# ============================================================================================
# Checkpoints
# ============================================================================================


def save_student(trainee: Trainee, directory: Path, method: str, step: int, *,
                 weights: dict[str, dict[str, torch.Tensor]] | None = None,
                 classifier_state: dict[str, torch.Tensor] | None = None) -> None:
    """The student (and classifier) checkpoint in ``directory``: from the live tensors, or from
    copies taken earlier (``weights``: ``Student.checkpoint_state()``; ``classifier_state``)."""
    if classifier_state is None and trainee.classifier is not None:
        classifier_state = trainee.classifier.state_dict()
    extra = {CLASSIFIER_STATE: classifier_state} if classifier_state is not None else {}
    trainee.student.save_checkpoint(directory, method=method, step=step, extra_state_dicts=extra, state=weights)


def _checkpoint_job(trainee: Trainee, trainer_state: dict[str, Any], out_dir: Path, method: str, step: int,
                    keep: int, snapshot: bool, copy: bool) -> Callable[[], None]:
    """The checkpoint of ``step`` as a job: with ``copy``, for ``ckpt.BackgroundWriter`` (the
    weights and ``trainer_state`` are copied now, ``snapshot_tensors``, and written later); without,
    to be run at once from the live tensors."""
    from prada.student.student import snapshot_tensors

    weights = classifier_state = None
    if copy:
        weights = trainee.student.checkpoint_state()
        trainer_state = snapshot_tensors(trainer_state)
        if trainee.classifier is not None:
            classifier_state = snapshot_tensors(trainee.classifier.state_dict())

    def write() -> None:
        for parent, with_state in [("checkpoints", True)] + ([("snapshots", False)] if snapshot else []):
            with atomic_dir(out_dir / parent / f"step-{step}") as d:
                save_student(trainee, d, method, step, weights=weights, classifier_state=classifier_state)
                if with_state:
                    ckpt.save_trainer_state(d / ckpt.TRAINER_STATE, trainer_state)
        ckpt.prune(out_dir / "checkpoints", keep)

    return write


def _copy_fits_in_memory(trainee: Trainee, optimizer: torch.optim.Optimizer) -> bool:
    """Whether a background checkpoint's copy (trained tensors + optimizer state) takes at most a
    third of the memory available now; True where that is unknown."""
    from prada.hardware import available_memory_bytes

    tensors: list[torch.Tensor] = [p for p in trainee.parameters() if p.requires_grad]
    tensors += [v for state in optimizer.state.values() for v in state.values() if isinstance(v, torch.Tensor)]
    available = available_memory_bytes()
    return available is None or 3 * sum(t.numel() * t.element_size() for t in tensors) <= available


def load_weights(trainee: Trainee, directory: Path) -> None:
    """Replace the freshly built student (and classifier) by a checkpoint's weights."""
    from prada.student.student import Student, load_extra_state

    device = trainee.student.device
    trust = trainee.student.student_cfg.trust_remote_code  # the user's config, never the checkpoint's
    trainee.student = Student.from_checkpoint(directory, trust_remote_code=trust).to(device).train()
    if trainee.classifier is not None:
        trainee.classifier.load_state_dict(load_extra_state(directory, CLASSIFIER_STATE))


# ============================================================================================
# train()
# ============================================================================================


def train(cfg: RunConfig, method: str, seed: int, out_dir: Path, corpus_path: Path, resume: bool = True,
          progress: Progress | None = None) -> TrainSummary:
    """Train ``method`` with ``seed``; write ``log.jsonl``, ``tb/``, checkpoints, ``final/`` and
    ``summary.json`` under ``out_dir``; return the summary. With ``resume``, a finished run returns
    its summary at once and an interrupted one continues exactly from its latest checkpoint.
    ``progress`` shows steps, tokens/s, L_y, L_d, domain accuracy and λ (``prada.progress``; the
    main process only; default: silent)."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from accelerate.utils import DistributedDataParallelKwargs, set_seed

    out_dir = Path(out_dir)
    tc = cfg.train
    spec = validate_inputs(cfg, method)
    if resume and (out_dir / "final").is_dir() and (out_dir / "summary.json").is_file():
        return TrainSummary.read(out_dir / "summary.json")
    data = load_training_data(cfg, Path(corpus_path), with_targets=spec.adversary)

    # -- 1. Processes, seeds, model -----------------------------------------------------------
    # find_unused_parameters: a step may leave a trainable parameter without gradient (e.g. the
    # LM head is unused by the question-only target pass under some tying schemes); DDP would
    # otherwise hang or raise. Its cost is one extra graph traversal per step.
    # Several processes on a machine without CUDA (torchrun / `accelerate launch --multi_gpu`):
    # accelerate needs cpu=True to pick MULTI_CPU with the gloo backend.
    multi_cpu = not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1
    # accelerate keeps one process-wide state and refuses a second Accelerator with another
    # mixed_precision; each run sets its own (the process group, kept in PartialState, stays).
    AcceleratorState._reset_state()
    precision = resolve_mixed_precision(tc.mixed_precision, "cuda" if torch.cuda.is_available() and not multi_cpu else "cpu")
    tune_allocator()
    accelerator = Accelerator(
        cpu=multi_cpu,
        mixed_precision=precision,
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )
    main = accelerator.is_main_process
    compiled = resolve_compile(tc.compile, precision, accelerator.device)
    attention = resolve_attention(tc.attention, compiled, precision, accelerator.device)
    if main:
        print(f"precision: {precision} (train.mixed_precision={tc.mixed_precision}; {describe(accelerator.device)}); "
              f"compiled layers: {'yes' if compiled else 'no'} (train.compile={tc.compile}"
              f"{f', activation memory budget {tc.activation_memory_budget:g}' if compiled else ''}); "
              f"attention: {attention} (train.attention={tc.attention})", file=sys.stderr, flush=True)
    set_seed(seed)
    student, tokenizer = build_student(cfg, spec)
    cfg = clamp_max_length(cfg, spec, _context_length(student))
    source, targets = encode_data(data, tokenizer, cfg, spec)
    classifier = None
    if spec.adversary:
        num_domains = 2 if cfg.adversarial.domains == "binary" else 1 + len(targets)
        classifier = DomainClassifier(student.hidden_size, num_domains, cfg.adversarial.classifier_hidden,
                                      cfg.adversarial.classifier_dropout)
    trainee = Trainee(student, classifier, cfg.adversarial.domain_loss_weight,
                      cfg.adversarial.pooling, cfg.adversarial.domains).to(accelerator.device)
    batches = make_batches(source, targets, cfg, seed, tokenizer.pad_token_id, accelerator)

    # -- 2. Resume (weights first: the optimizer is built over the loaded parameters) -----------
    start_step, elapsed_before, tokens_before, last = 0, 0.0, 0, {}
    latest = ckpt.latest_checkpoint(out_dir) if resume else None
    if latest is not None:
        state = ckpt.load_trainer_state(latest)
        if state.get("precision", "no") != precision:
            raise TrainingError(f"{latest}: the checkpoint trained in precision '{state.get('precision', 'no')}', "
                                f"this machine resolves train.mixed_precision={tc.mixed_precision} to '{precision}'; "
                                "set train.mixed_precision to the checkpoint's value to resume")
        if state["method"] != method or state["seed"] != seed:
            raise TrainingError(f"{latest}: checkpoint of {state['method']}/seed {state['seed']}, "
                                f"not {method}/seed {seed}; use another out_dir or --no-resume")
        changed = config_changes(state["config"], cfg, _RESUME_MUTABLE)
        if changed:
            raise TrainingError(f"{latest}: the checkpoint was made with a different config, so resuming "
                                f"would not continue the same run; changed: {'; '.join(changed)}. Restore "
                                "these values, or start over with --no-resume (or another --out)")
        load_weights(trainee, latest)
        apply_memory_options(trainee.student, cfg)
    # fp32 keeps the reference kernels (bit for bit the results measured before mixed precision);
    # the fast path fuses the LM head with its loss and the AdamW update, and compiles the layers.
    trainee.student.fused_lm_loss = precision != "no"
    if attention != "model":
        trainee.student.set_training_attention(attention)
    if compiled:
        trainee.student.compile_layers(tc.activation_memory_budget)
    groups = param_groups(trainee.student, trainee.classifier, cfg)
    optimizer = make_optimizer(groups, fused=precision != "no")
    scheduler = make_scheduler(optimizer, cfg)
    if latest is not None:
        try:
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            batches.load_state_dict(state["data"])
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise TrainingError(f"{latest / ckpt.TRAINER_STATE}: does not fit this run ({type(e).__name__}: {e}); "
                                "the data or the file changed since it was written: resume with the data it was "
                                "made with, or start over with --no-resume") from None
        start_step, elapsed_before, tokens_before = state["step"], state["elapsed_s"], state["tokens"]
        last = state.get("last", {})
        logger.info("resuming %s from %s (step %d)", out_dir, latest, start_step)
    model, optimizer = accelerator.prepare(trainee, optimizer)

    # -- 3. Sanity check before step 0 (no RNG is consumed: eval mode, no grad) ----------------
    counts = {g["name"]: sum(p.numel() for p in g["params"]) for g in groups}
    if not counts or sum(counts.values()) == 0:
        raise TrainingError(f"method '{method}' at backbone={tc.backbone}: no trainable parameters")
    sanity = _sanity_loss(model, batches, accelerator, lam=cfg.adversarial.lambda_max if spec.adversary else 0.0)
    if not all(math.isfinite(v) for v in sanity.values()):
        raise TrainingError(f"the loss is not finite before training ({sanity}); check student.dtype "
                            "and the data")
    logger.info("trainable parameters per group: %s; initial loss: %s", counts, sanity)
    if latest is not None:
        ckpt.set_rng_state(state["rng"])  # last: nothing after this may consume randomness

    # -- 4. Outputs (main process only) -------------------------------------------------------
    log: JsonlAppender | None = None
    writer: Any = None  # a SummaryWriter on the main process
    if main:
        if not resume:  # start over: no stale checkpoint may be resumed from later
            _clear_outputs(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out_dir / "config.yaml", dump_yaml(cfg))
        _truncate_log(out_dir / "log.jsonl", start_step)
        log = JsonlAppender(out_dir / "log.jsonl")
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out_dir / "tb"), purge_step=start_step + 1)
    bar = (progress if main and progress else silent()).stage(f"train {method}-seed{seed}", tc.max_steps, "steps",
                                                              initial=start_step)

    # -- 5. The loop --------------------------------------------------------------------------
    model.train()
    session_start, session_tokens = time.perf_counter(), 0
    # Checkpoints are written by a background thread from copies, while training goes on.
    with ckpt.BackgroundWriter() as saver:
        for step in range(start_step, tc.max_steps):
            step_start = time.perf_counter()
            lam = dann_lambda(step, tc.max_steps, cfg.adversarial.lambda_max, cfg.adversarial.gamma) if spec.adversary else 0.0
            sums = torch.zeros(4, device=accelerator.device)  # L_y, L_d, domain_acc, tokens
            for micro in range(tc.grad_accum):
                src, tgt, sizes, tokens = batches.next(accelerator.device)
                sync = micro == tc.grad_accum - 1
                with nullcontext() if sync else accelerator.no_sync(model):
                    with accelerator.autocast():
                        out = model(src, tgt, sizes, lam)
                    accelerator.backward(out.total / tc.grad_accum)
                sums += torch.tensor([out.parts["L_y"].item(), out.parts.get("L_d", torch.tensor(0.0)).item(),
                                      out.metrics.get("domain_acc", 0.0), tokens], device=accelerator.device)
            grad_norm, classifier_grad_norm = clip_gradients(trainee, cfg, accelerator)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)

            # -- log (averages over micro-batches and processes; tokens summed) ------------------
            totals = accelerator.reduce(sums, reduction="sum")
            n = tc.grad_accum * accelerator.num_processes
            step_tokens = int(totals[3])
            session_tokens += step_tokens
            dt = time.perf_counter() - step_start
            last = {"L_y": float(totals[0] / n), "L_d": float(totals[1] / n) if spec.adversary else None,
                    "domain_acc": float(totals[2] / n) if spec.adversary else None, "lambda": lam}
            if not math.isfinite(last["L_y"]) or (spec.adversary and not math.isfinite(last["L_d"])):
                raise TrainingError(f"non-finite loss at step {step + 1} ({last}); lower train.lr or check "
                                    "the data; the latest checkpoint is kept")
            record = {"step": step + 1, **last, "lr": scheduler.get_last_lr()[0],
                      "grad_norm": grad_norm,
                      **({"classifier_lr": scheduler.get_last_lr()[-1], "classifier_grad_norm": classifier_grad_norm}
                         if trainee.classifier is not None else {}),
                      "tokens_per_s": step_tokens / dt if dt > 0 else None,
                      "elapsed_s": elapsed_before + time.perf_counter() - session_start}
            # log and writer exist on the main process only
            if log is not None and writer is not None and ((step + 1) % tc.log_every == 0 or step + 1 == tc.max_steps):
                log.write(record)
                for k, v in record.items():
                    if k != "step" and v is not None:
                        writer.add_scalar(f"train/{k}", v, step + 1)
                for g, lr in zip(groups, scheduler.get_last_lr()):
                    writer.add_scalar(f"lr/{g['name']}", lr, step + 1)
            bar.show(**last)
            bar.advance(1, tokens=step_tokens)

            # -- checkpoint -----------------------------------------------------------------------
            done = step + 1
            if tc.save_every > 0 and done % tc.save_every == 0 and done < tc.max_steps:
                state = {"method": method, "seed": seed, "config": to_dict(cfg), "step": done,
                         "optimizer": optimizer.state_dict(),
                         "scheduler": scheduler.state_dict(), "rng": ckpt.rng_state(), "data": batches.state_dict(),
                         "precision": precision,
                         "elapsed_s": record["elapsed_s"], "tokens": tokens_before + session_tokens, "last": last}
                if main:
                    unwrapped = accelerator.unwrap_model(model)
                    background = _copy_fits_in_memory(unwrapped, optimizer)
                    job = _checkpoint_job(unwrapped, state, out_dir, method, done, tc.keep_checkpoints,
                                          tc.eval_checkpoints, copy=background)
                    if background:
                        saver.submit(job)
                    else:  # no room for a copy: written now, from the live tensors
                        logger.info("checkpoint at step %d written in-line: its copy would not fit in memory", done)
                        saver.wait()
                        job()
                accelerator.wait_for_everyone()
    bar.close()

    # -- 6. Final model, then the summary -------------------------------------------------------
    wall = elapsed_before + time.perf_counter() - session_start
    summary = TrainSummary(
        method=method, seed=seed, backbone=tc.backbone, steps=tc.max_steps, wall_s=wall,
        tokens=tokens_before + session_tokens,
        tokens_per_s=(tokens_before + session_tokens) / wall if wall > 0 else None,
        examples={"source": len(source), "source_questions": data.source_questions,
                  "targets": {k: len(v) for k, v in targets.items()}},
        trainable_parameters=counts, num_processes=accelerator.num_processes,
        device=accelerator.device.type, mixed_precision=precision,
        mixed_precision_requested=tc.mixed_precision, compiled=compiled, attention=attention,
        effective_batch_size=tc.batch_size * tc.grad_accum * accelerator.num_processes,
        resumed_from_step=start_step or None,
        final=last,
    )
    if main:
        unwrapped = accelerator.unwrap_model(model)
        ckpt.write_dir_atomic(out_dir / "final", lambda d: save_student(unwrapped, d, method, tc.max_steps))
        summary.write(out_dir / "summary.json")
        if log is not None and writer is not None:
            log.close()
            writer.close()
    accelerator.wait_for_everyone()
    return summary


# ============================================================================================
# Small helpers of train()
# ============================================================================================



@torch.no_grad()
def _sanity_loss(model, batches: Batches, accelerator, lam: float) -> dict[str, float]:
    """The objective on the first batch, without advancing the data or consuming randomness."""
    state = batches.state_dict()
    src, tgt, sizes, _ = batches.next(accelerator.device)
    batches.load_state_dict(state)
    model.eval()
    with accelerator.autocast():
        out = model(src, tgt, sizes, lam)
    model.train()
    return {k: float(v) for k, v in out.parts.items()}


# Keys that may differ between an interrupted run and its resumption: they change what is saved
# or shown, never the trajectory of the weights.
_RESUME_MUTABLE = ("name", "output_dir", "methods", "seeds", "eval", "report", "teacher", "data.data_dir",
                   "train.save_every", "train.keep_checkpoints", "train.eval_checkpoints", "train.log_every",
                   "student.max_question_tokens")


def _clear_outputs(out_dir: Path) -> None:
    import shutil

    for name in ("checkpoints", "snapshots", "final", "tb"):
        shutil.rmtree(out_dir / name, ignore_errors=True)
    for name in ("summary.json", "log.jsonl"):
        (out_dir / name).unlink(missing_ok=True)


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines past the checkpoint we resume from (they will be redone)."""
    if not path.exists():
        return
    if step == 0:
        path.unlink()
        return
    records = [r for r in read_jsonl(path, tolerate_torn_tail=True) if r.get("step", 0) <= step]
    write_jsonl_atomic(path, records)
