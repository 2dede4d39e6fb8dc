"""Typed experiment configuration.

One dataclass per concern, every field documented where it is declared. A YAML file mirrors
``RunConfig`` 1:1; command-line overrides are dotted (``train.lr=1e-4``). Unknown keys and
ill-typed values are collected and reported together, each with the closest valid name.

>>> cfg = load_config(None, ["train.max_steps=5", "methods=[ft_cot, prada]", "data.targets=[addsub]"])
>>> cfg.train.max_steps, cfg.methods
(5, ('ft_cot', 'prada'))

List-typed keys are tuples in a built config, so no section can be changed in place; a config file
still holds YAML lists (``to_dict`` and ``dump_yaml`` turn the tuples back into lists).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import logging
import math
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

import yaml

from prada.errors import ConfigError
from prada.formats import ZERO_SHOT_PROMPT, TeacherPrompt
from prada.methods import ADV_METHOD, BASE_METHOD, METHOD_SPECS, METHODS, method_spec
from prada.redact import redact_text, redact_values

logger = logging.getLogger(__name__)


Backbone = Literal["frozen", "lora", "full"]
BACKBONES: tuple[str, ...] = get_args(Backbone)
TeacherBackend = Literal["openai", "hf", "vllm", "replay", "gold"]


def _store_tuples(section: Any, *names: str) -> None:
    """Store the sequence fields ``names`` of a frozen ``section`` as tuples: a list given in Python
    (``RunConfig(methods=["ft_cot"])``) would otherwise stay mutable inside a frozen config."""
    for name in names:
        value = getattr(section, name)
        if isinstance(value, list):
            object.__setattr__(section, name, tuple(value))


@dataclass(frozen=True)
class CustomTaskConfig:
    """A user's own dataset, registered as a task under ``name``."""

    name: str = ""
    """Task name used in ``data.source`` / ``data.targets``."""
    path: str = ""
    """A JSONL file (one object per line) or a JSON list of objects."""
    answer_type: Literal["number", "choice", "yes_no", "string"] = "string"
    """How answers are extracted and compared."""
    question_field: str = "question"
    """Field of a record that holds the question text."""
    answer_field: str = "answer"
    """Field of a record that holds the gold answer."""
    choices_field: str | None = "choices"
    """A dict {"A": text, ...} or a list of option texts; appended to the question as
    ``Answer Choices: (A) ... (B) ...``. Missing or null means not multiple choice."""
    rationale_field: str | None = "rationale"
    """Optional gold rationale (usable with ``teacher.backend: gold``)."""
    test_fraction: float = 0.3
    """Fraction held out as the test split (seeded, deterministic)."""
    category: str = "custom"
    """The task's category in listings and reports (``prada.data.example.Category``)."""


@dataclass(frozen=True)
class DataConfig:
    """Which tasks to use and where their files are."""

    data_dir: str | None = None
    """Directory laid out like ``shared/data`` (raw/, finetune_cot/, teacher/). Falls back to
    ``$PRADA_DATA_DIR``. Not needed for synthetic or custom tasks."""
    source: str = "multiarith"
    """Labeled source task (its train split is distilled)."""
    targets: tuple[str, ...] = ()
    """Target tasks: their train-split *questions* feed the domain classifier (never their
    answers), their test splits are evaluated."""
    custom_tasks: tuple[CustomTaskConfig, ...] = ()
    """The user's own datasets, each registered as a task (see ``CustomTaskConfig``)."""
    max_source_examples: int | None = None
    """Cap on source train questions sent to the teacher (seeded subset), for budgets."""
    max_target_examples: int | None = None
    """Cap on unlabeled target train questions per target (seeded subset)."""
    val_fraction: float = 0.0
    """Fraction of the source train split held out as validation (for hyper-parameter choice)."""
    diverse: bool = True
    """Train on every kept teacher rationale per question (diverse reasoning); else only the first."""
    seed: int = 0
    """Seed of subsetting and of the 70/30 splits of datasets without published splits."""

    def __post_init__(self) -> None:
        _store_tuples(self, "targets", "custom_tasks")


@dataclass(frozen=True)
class TeacherConfig:
    """Stage 1: the teacher that writes rationales for the source train questions."""

    backend: TeacherBackend = "replay"
    """``openai`` (any OpenAI-compatible endpoint), ``hf`` (local transformers model), ``vllm``
    (offline vLLM), ``replay`` (recorded completions), ``gold`` (the dataset's own rationales)."""
    model: str = "text-davinci-002"
    """Model name sent to the endpoint, a local path/alias for ``hf``/``vllm``, or the recorded
    teacher's folder name for ``replay``."""
    prompt: TeacherPrompt = ZERO_SHOT_PROMPT
    """``zero_shot_cot`` (Kojima et al.: "Let's think step by step", then the answer trigger) or
    ``few_shot_cot`` (the dataset's recorded exemplars before the question)."""
    samples: int = 1
    """D: samples per question. Sample 0 is greedy, samples 1..D-1 use ``temperature``."""
    temperature: float = 0.7
    """Sampling temperature of samples 1..D-1 (sample 0 is greedy)."""
    top_p: float = 1.0
    """Nucleus sampling mass of samples 1..D-1."""
    max_rationale_tokens: int = 128
    """Token budget of the rationale (stage 1 of Zero-Shot-CoT)."""
    max_answer_tokens: int = 32
    """Token budget of the answer (stage 2: after the answer trigger)."""
    chat: bool = False
    """Send prompts through the chat format (chat completions / the tokenizer's chat template)."""
    base_url: str | None = None
    """OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1 (None: the SDK default)."""
    api_key_env: str = "OPENAI_API_KEY"
    """Name of the environment variable holding the API key (keys never go in config files)."""
    concurrency: int = 16
    """Maximum requests in flight (``openai`` backend)."""
    request_timeout: float = 60.0
    """Seconds before one request is abandoned and retried (``openai`` backend)."""
    max_retries: int = 6
    """Retries of a failed request before it becomes a failure record."""
    backoff_base_s: float | None = None
    """First retry delay; doubles per attempt with full jitter (None: 0.5 s, or
    ``$PRADA_TEACHER_BACKOFF_BASE_S``). A server's ``Retry-After`` takes precedence."""
    backoff_max_s: float | None = None
    """Cap on one retry delay (None: 30 s, or ``$PRADA_TEACHER_BACKOFF_MAX_S``)."""
    use_n: bool = True
    """Ask for several samples in one request (``n``) when the server supports it."""
    batch_size: int = 8
    """Batch size of local generation (``hf`` backend)."""
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    """Weights and activations of the ``hf`` backend's model. ``auto``: bfloat16 on CUDA, float32 on
    CPU; ``bfloat16`` on a CPU with AMX/AVX512-BF16 is several times faster than float32."""
    replay_dir: str | None = None
    """Recorded completions folder holding ``{task}.jsonl``; default
    ``{data_dir}/teacher/{model}/{prompt}``. A teacher run's ``samples/`` folder replays all of its
    samples per question (``samples`` up to the recorded D)."""
    price_per_1k_prompt_tokens: float = 0.0
    """Price per 1000 prompt tokens, for the cost estimate in the teacher's summary."""
    price_per_1k_completion_tokens: float = 0.0
    """Price per 1000 completion tokens, for the cost estimate in the teacher's summary."""
    seed: int = 0
    """Base seed of sampling: sample ``i`` of a question is seeded ``seed * 2^20 + i``."""


@dataclass(frozen=True)
class StudentConfig:
    """The student: any Hugging Face causal LM."""

    model: str = "smollm2-135m-instruct"
    """A built-in alias (``smollm2-135m-instruct``), a local folder, or a hub id (offline: must
    already be in the local cache)."""
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "float32"
    """Weights' format when the student is loaded for training (``auto``: the checkpoint's)."""
    trust_remote_code: bool = False
    """Allow a hub model's own Python code to run (``transformers``' flag); off by default."""
    chat_template: bool = False
    """Wrap the input in the tokenizer's chat template instead of Fine-tune-CoT's ``Q ###``."""
    max_length: int = 256
    """Max tokens of prompt + completion in training; longer examples are truncated with a
    warning (the completion's end is cut, never the question)."""
    max_question_tokens: int = 192
    """Questions longer than this are refused with an error naming the example."""


@dataclass(frozen=True)
class PromptEncoderConfig:
    """P-Tuning (Liu et al. 2021), as PEFT's ``PromptEncoderConfig``."""

    num_virtual_tokens: int = 20
    """Virtual tokens prepended to every input (positions shift by this many)."""
    encoder_type: Literal["mlp", "lstm"] = "mlp"
    """Reparameterisation of the virtual tokens: an MLP, or an LSTM + MLP (PEFT's
    ``encoder_reparameterization_type``)."""
    hidden_size: int = 128
    """Hidden size of the reparameterisation encoder."""
    dropout: float = 0.0
    """Dropout inside the reparameterisation encoder."""
    lr: float | None = None
    """Learning rate of the prompt encoder (None: ``train.lr``)."""


@dataclass(frozen=True)
class LoraConfig:
    """LoRA through PEFT (used when ``train.backbone: lora``)."""

    r: int = 16
    """Rank of the low-rank update."""
    alpha: int = 32
    """Scaling numerator: the update is scaled by ``alpha / r``."""
    dropout: float = 0.05
    """Dropout on the LoRA branch's input."""
    target_modules: str | tuple[str, ...] = "all-linear"
    """Modules that get an adapter: ``all-linear`` or a list of module names (e.g. ``[q_proj, v_proj]``)."""

    def __post_init__(self) -> None:
        _store_tuples(self, "target_modules")


@dataclass(frozen=True)
class AdversarialConfig:
    """Stage 3: the domain classifier behind the gradient reversal layer (DANN)."""

    lambda_max: float = 0.1
    """λ at the end of training; λ_p = λ_max·(2/(1+exp(−γ·p))−1), p = step / total steps."""
    gamma: float = 10.0
    """γ of the λ schedule (DANN: 10)."""
    domains: Literal["binary", "per_target"] = "binary"
    """``binary``: source vs. all targets pooled into one target domain (the paper's objective).
    ``per_target``: a (1+K)-way classifier, one label per target; the target side's loss is then
    the mean of the per-target means. Either way the source side and the target side weigh the
    same in L_d (a sum of two per-domain means)."""
    classifier_hidden: int = 256
    """Hidden width of the classifier MLP (LayerNorm → Linear → ReLU → Dropout → Linear)."""
    classifier_dropout: float = 0.1
    """Dropout inside the classifier MLP."""
    classifier_lr: float | None = 1e-3
    """Learning rate of the domain classifier (None: ``train.lr``). A freshly initialised MLP at a
    fine-tuning LR (~5e-5) stays at chance, and an adversary at chance reverses no useful gradient."""
    classifier_schedule: Literal["constant", "dann"] = "constant"
    """The classifier's own LR schedule: ``constant`` after the student's warm-up, or DANN's
    annealing μ0/(1+10p)^0.75 (p = step / total steps). Never the student's decay to 0: an
    adversary that stops learning while λ rises is fooled without the features changing."""
    classifier_max_grad_norm: float = 1.0
    """Gradient clipping of the classifier alone (0 disables); the student's parameters are
    clipped separately with ``train.max_grad_norm``."""
    domain_loss_weight: float = 1.0
    """Weight of L_d in the descent objective (the GRL already scales the reversed gradient by λ)."""
    target_batch_size: int | None = None
    """Unlabeled target questions per step (None: ``train.batch_size``, as many as source
    questions). With several targets they are shared out evenly, the remainder rotating from step
    to step, so every target contributes the same share over training."""
    pooling: Literal["question_mean", "question_last"] = "question_mean"
    """How question-token hidden states are pooled into the features the classifier sees."""


@dataclass(frozen=True)
class TrainConfig:
    """Stages 2-3: the training loop."""

    backbone: Backbone = "full"
    """``frozen`` (paper-faithful for large students), ``lora`` or ``full`` fine-tuning. Hold it
    equal across compared methods."""
    lr: float = 5e-5
    """Peak learning rate of the student (after warm-up)."""
    weight_decay: float = 0.0
    """AdamW weight decay of the student's parameters."""
    batch_size: int = 8
    """Source examples per micro-batch."""
    grad_accum: int = 1
    """Micro-batches per optimizer step (effective batch: ``batch_size * grad_accum``)."""
    max_steps: int = 120
    """Optimizer steps (not micro-batches)."""
    warmup_ratio: float = 0.05
    """Fraction of ``max_steps`` over which the LR rises linearly from 0."""
    lr_schedule: Literal["linear", "cosine", "constant"] = "linear"
    """The student's LR after warm-up: linear or cosine decay to 0, or constant."""
    max_grad_norm: float = 1.0
    """Gradient clipping of the student's parameters (0 disables)."""
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = "auto"
    """``auto``: ``bf16`` where the hardware multiplies bf16 natively (CPUs with AMX-BF16 or
    AVX512-BF16, bf16-capable CUDA GPUs), ``no`` (fp32) elsewhere; the choice is printed and recorded
    in ``summary.json``. ``bf16``/``fp16``: forward and backward in that format, master weights,
    optimizer state and the domain classifier in fp32. ``no``: everything in fp32 (the precision of
    the results committed before ``auto`` existed)."""
    compile: Literal["auto", "yes", "no"] = "auto"
    """``torch.compile`` each decoder layer (one graph shared by all layers, dynamic shapes): fuses
    the elementwise work around the matmuls (~15 % faster steps and ~1 GiB less memory for
    SmolLM2 on 2 AMX cores), at ~20-60 s of compilation once per process. ``auto``: on for the bf16
    path on CPU when a C++ compiler is present (inductor needs one), off elsewhere (the fp32
    reference path keeps its kernels)."""
    attention: Literal["auto", "model", "sdpa_recompute"] = "auto"
    """The student's attention while training. ``sdpa_recompute``: SDPA's forward with a backward
    written as batched matmuls (``prada.student.attention``): 1.5–5× faster than PyTorch's CPU
    flash-attention backward on 2 AMX cores, same memory. ``model``: the model's own
    implementation. ``auto``: ``sdpa_recompute`` on the compiled bf16 CPU path, ``model``
    elsewhere (the fp32 reference path keeps its kernels)."""
    activation_memory_budget: float = 0.95
    """With compiled layers (``train.compile``): the fraction of their activation memory kept for
    the backward pass (``torch._functorch.config.activation_memory_budget``); below 1 the compiler
    recomputes the cheapest activations in the backward instead of saving them. On 2 AMX cores
    (SmolLM2, 8 × 256 source tokens) 0.95 took PRADA's peak RSS from 4.6 to 3.9 GiB and FT-CoT's
    from 4.0 to 3.5 GiB at the same step time; 0.8 and below cost ~15 % more time. 1 keeps the
    compiler's fastest plan. No effect on uncompiled layers (``gradient_checkpointing`` there)."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass: ~40% less peak memory for ~20% more time."""
    save_every: int = 0
    """Checkpoint every N optimizer steps (0: only at the end). Resuming uses the latest one."""
    keep_checkpoints: int = 2
    """How many resumable checkpoints to keep (the final model is always kept)."""
    eval_checkpoints: bool = False
    """Keep a lightweight copy of the weights at every ``save_every`` step for accuracy-vs-step
    curves (Fig. 6-style)."""
    log_every: int = 1
    """Write a ``log.jsonl`` record (and TensorBoard scalars) every N optimizer steps."""


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation of students (and of the untrained base model)."""

    split: str = "test"
    """The split evaluated: ``test``, ``val`` (needs ``data.val_fraction > 0``) or ``train``."""
    batch_size: int = 128
    """Questions decoded together (sorted by length; finished rows leave the batch). On CPU a
    large batch amortises the per-step cost: 128 MultiArith questions decode ~2x faster at 128
    than at 16, with the same greedy outputs."""
    max_new_tokens: int = 128
    """Token budget of one generated answer (rationale included)."""
    max_examples: int | None = None
    """Seeded subset of each evaluated split (None: all); the subset is the same for every model."""
    seed: int = 0
    """Seed of the ``max_examples`` subset."""
    zero_shot_baseline: bool = True
    """Also evaluate the untrained student with Zero-Shot-CoT prompting."""
    tasks: Literal["all", "source"] = "all"
    """Evaluate the source and every target (``all``), or the source only (``source``): a
    hyper-parameter sweep on the source's ``val`` split must not look at the targets."""
    backend: Literal["hf", "vllm"] = "hf"
    """``hf`` (transformers, CPU or GPU) or ``vllm`` (GPU; not for P-Tuning checkpoints)."""
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """The weights' format while generating and extracting features: ``auto`` is ``bfloat16``
    where the hardware multiplies bf16 natively (as ``train.mixed_precision: auto``), else
    ``float32``. Greedy answers in bf16 differ from fp32 on some questions (near-ties; see
    ``exact_top_logits``)."""
    exact_top_logits: int = 8
    """With ``dtype`` bf16/fp16 (``hf`` backend): every step's ``k`` largest logits per row are
    recomputed in fp32 from an fp32 copy of the LM head (``prada.evaluation.exact_logits``), so
    the greedy choice is not decided by the head's rounding: on a fine-tuned SmolLM2 student it
    raised agreement with fp32 answers from 123 to 162 of 200 questions, for ~6 % of the
    decoding throughput (a top-k and an fp32 copy of the logits per step).
    ``0``: off (plain bf16 logits, how bf16 evaluations ran before it existed)."""
    decode_attention: Literal["auto", "sdpa"] = "auto"
    """The attention of bf16 decoding steps on CPU (``hf`` backend): ``auto`` runs prada's fused
    C++ kernel (``prada.evaluation.decode_kernel``: it reads the KV cache ~4x faster than SDPA;
    compiled once per machine with its C++ compiler, SDPA with a warning where none is found);
    ``sdpa``: PyTorch's SDPA (how bf16 decoding ran before the kernel). Both keep the softmax in
    fp32; their outputs differ by bf16 rounding, so greedy texts can differ on near-ties."""
    device: str = "auto"
    """Where the ``hf`` backend generates and features are extracted: ``auto`` (this process's
    CUDA GPU when one is visible, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``."""


@dataclass(frozen=True)
class ReportConfig:
    """``prada report``: tables, bootstrap intervals and figures."""

    bootstrap_samples: int = 1000
    """Bootstrap resamples of each accuracy interval and paired comparison."""
    feature_examples: int = 200
    """Questions per domain used for t-SNE and proxy A-distance."""
    plots: bool = True
    """Draw the PNG figures (tables are always written)."""


@dataclass(frozen=True)
class RunConfig:
    """One experiment: ``prada run CONFIG.yaml`` runs the grid methods × seeds.

    Build one with ``load_config`` / ``config_from_dict`` (typed and validated once, every problem
    reported together); change one with ``with_overrides`` (dotted keys, validated again) or
    ``dataclasses.replace``. Every section is frozen: nothing mutates a config after it is built.
    """

    name: str = "experiment"
    """The experiment's name, shown in reports."""
    output_dir: str = "runs/experiment"
    """The run directory every stage writes into (see ``prada.paths.RunPaths``)."""
    methods: tuple[str, ...] = (BASE_METHOD, ADV_METHOD)
    """Training methods of the grid (``prada.methods.METHODS``)."""
    seeds: tuple[int, ...] = (0,)
    """Training seeds of the grid: each method is trained once per seed."""
    data: DataConfig = field(default_factory=DataConfig)
    """Tasks and data files."""
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    """Stage 1: the teacher."""
    student: StudentConfig = field(default_factory=StudentConfig)
    """The student model and its input format."""
    prompt_encoder: PromptEncoderConfig = field(default_factory=PromptEncoderConfig)
    """P-Tuning settings (methods with a prompt encoder)."""
    lora: LoraConfig = field(default_factory=LoraConfig)
    """LoRA settings (``train.backbone: lora``)."""
    adversarial: AdversarialConfig = field(default_factory=AdversarialConfig)
    """The domain adversary (methods with an adversary)."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """The training loop."""
    eval: EvalConfig = field(default_factory=EvalConfig)
    """Evaluation."""
    report: ReportConfig = field(default_factory=ReportConfig)
    """Reports."""

    def __post_init__(self) -> None:
        _store_tuples(self, "methods", "seeds")

    def resolved_data_dir(self) -> Path | None:
        """``data.data_dir``, else ``$PRADA_DATA_DIR``, else None."""
        value = self.data.data_dir or os.environ.get("PRADA_DATA_DIR")
        return Path(value).expanduser() if value else None


# --------------------------------------------------------------------------------------------
# Loading, validation, overrides
# --------------------------------------------------------------------------------------------


def _closest(name: str, valid: typing.Iterable[str]) -> str:
    match = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.5)
    return f" (did you mean '{match[0]}'?)" if match else ""


_YAML_BOOL_WORDS = {False: ("no", "off", "false"), True: ("yes", "on", "true")}


def _coerce(value: Any, tp: Any, where: str, problems: list[str]) -> Any:
    """Check/convert ``value`` to the annotated type ``tp``; append a problem on mismatch."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            sub: list[str] = []
            out = _coerce(value, arg, where, sub)
            if not sub:
                return out
        problems.append(f"{where}: {value!r} is not a valid {_type_name(tp)}")
        return value
    if origin is Literal:
        allowed = get_args(tp)
        if isinstance(value, bool):  # YAML 1.1 reads an unquoted `no`/`off` as False, `yes`/`on` as True
            words = [w for w in _YAML_BOOL_WORDS[value] if w in allowed]
            value = words[0] if words else value
        if value not in allowed:
            problems.append(
                f"{where}: {value!r} is not one of {list(allowed)}{_closest(str(value), map(str, allowed))}"
            )
        return value
    if origin is list:
        (item_tp,) = get_args(tp)
        if not isinstance(value, list):
            problems.append(f"{where}: expected a list, got {value!r}")
            return value
        return [_coerce(v, item_tp, f"{where}[{i}]", problems) for i, v in enumerate(value)]
    if origin is tuple:  # tuple[X, ...]: a YAML list, stored immutable
        item_tp, _ = get_args(tp)
        if not isinstance(value, (list, tuple)):
            problems.append(f"{where}: expected a list, got {value!r}")
            return value
        return tuple(_coerce(v, item_tp, f"{where}[{i}]", problems) for i, v in enumerate(value))
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            problems.append(f"{where}: expected a mapping of {tp.__name__} fields, got {value!r}")
            return tp()
        return _build(tp, value, where, problems)
    if tp is bool:
        if not isinstance(value, bool):
            problems.append(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{where}: expected a number, got {value!r}")
            return value
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            problems.append(f"{where}: expected a string, got {value!r}")
        return value
    return value


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _build(cls: type, raw: dict[str, Any], where: str, problems: list[str]) -> Any:
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in names:
            problems.append(f"unknown key '{path}'{_closest(str(key), names)}")
            continue
        kwargs[key] = _coerce(value, hints[key], path, problems)
    try:
        return cls(**kwargs)
    except TypeError as e:  # pragma: no cover - guarded by the checks above
        problems.append(f"{where or 'config'}: {e}")
        return cls()


T = typing.TypeVar("T")


def section_from_dict(cls: type[T], raw: Any, where: str) -> T:
    """One config section (e.g. ``StudentConfig``) from plain data, typed exactly like a config
    file (unknown keys and wrong types are errors); for sections stored in files prada reads back,
    such as a checkpoint's ``prada_checkpoint.json``. Raises ``ConfigError`` listing every problem.
    """
    problems: list[str] = []
    section = _coerce(raw, cls, where, problems)
    if problems:
        raise ConfigError("; ".join(redact_text(p) for p in problems))
    return section


Scope = Literal["run", "evaluate"]
"""What a config is loaded for: a whole ``run`` (every check), or ``evaluate`` (only the checks of
the keys evaluation reads, see ``EVALUATION_KEYS``)."""

EVALUATION_KEYS = ("data.", "student.", "eval.")
"""The sections ``prada evaluate --config`` takes from a config (custom tasks, data directory,
student format, eval settings)."""
TRAINING_ONLY_KEYS = ("data.source", "data.targets", "data.max_source_examples", "data.max_target_examples",
                      "data.diverse")
"""Keys of those sections that only training reads: a config written to evaluate a custom task
need not satisfy their rules (e.g. "methods 'prada' need at least one target task")."""


def concerns_evaluation(problem: str) -> bool:
    """Whether a ``validate`` problem (``"key: message"``) is about a key evaluation reads.

    >>> concerns_evaluation("eval.batch_size: must be >= 1"), concerns_evaluation("data.targets: duplicate")
    (True, False)
    """
    key = problem.split(":", 1)[0].split(" ", 1)[0]
    return key.startswith(EVALUATION_KEYS) and not key.startswith(TRAINING_ONLY_KEYS)


def config_from_dict(raw: dict[str, Any], *, source: str = "config", scope: Scope = "run") -> RunConfig:
    """Build and validate a ``RunConfig``; every problem is reported in one ``ConfigError``.

    The types come first (a value of the wrong type is named with the type it needs; unknown keys
    are always problems), then ``validate`` checks every range and every rule across fields; with
    ``scope="evaluate"`` only those of the keys evaluation reads (``concerns_evaluation``).
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping, got {type(raw).__name__}")
    problems: list[str] = []
    cfg = _build(RunConfig, drop_removed_keys(raw, source), "", problems)
    if not problems:
        problems.extend(p for p in validate(cfg) if scope == "run" or concerns_evaluation(p))
    if problems:
        problems = [redact_text(p) for p in problems]  # a value may be a URL with a key in it
        if len(problems) == 1:
            raise ConfigError(f"{source}: {problems[0]}")
        listing = "\n  - ".join(problems)
        raise ConfigError(f"{source}: {len(problems)} problems:\n  - {listing}")
    return cfg


# --------------------------------------------------------------------------------------------
# Validation: every range and every rule across fields, in one place
# --------------------------------------------------------------------------------------------

Check = typing.Callable[[Any], "str | None"]
"""A range rule: ``None`` when the value is valid, else the valid range (``"must be > 0"``)."""


def _at_least(low: float, *, optional: bool = False) -> Check:
    def check(value: Any) -> str | None:
        if value is None and optional:
            return None
        return None if value >= low else f"must be >= {low}" + (" (or null)" if optional else "")
    return check


def _above(low: float, *, optional: bool = False) -> Check:
    def check(value: Any) -> str | None:
        if value is None and optional:
            return None
        return None if value > low else f"must be > {low}" + (" (or null)" if optional else "")
    return check


def _fraction(*, low_open: bool = False, high_open: bool = False, high: float = 1.0) -> Check:
    def check(value: Any) -> str | None:
        ok_low = value > 0 if low_open else value >= 0
        ok_high = value < high if high_open else value <= high
        if ok_low and ok_high:
            return None
        return f"must be in {'(' if low_open else '['}0, {high:g}{')' if high_open else ']'}"
    return check


_SEED = _at_least(0)
_SEED_LIMIT = 2**32  # numpy's and torch's seeds are unsigned 32-bit

_RANGES: dict[str, tuple[Check, str]] = {
    # key: (rule, why / what the value means: shown with the problem)
    "data.max_source_examples": (_at_least(1, optional=True), "null means all"),
    "data.max_target_examples": (_at_least(1, optional=True), "null means all"),
    "data.val_fraction": (_fraction(high=0.5),
                          "0 means no validation split; above 0.5 it would be larger than what is trained on"),
    "data.seed": (_SEED, ""),
    "teacher.samples": (_at_least(1), ""),
    "teacher.temperature": (_at_least(0), ""),
    "teacher.top_p": (_fraction(low_open=True), ""),
    "teacher.max_rationale_tokens": (_at_least(1), ""),
    "teacher.max_answer_tokens": (_at_least(1), ""),
    "teacher.concurrency": (_at_least(1), ""),
    "teacher.request_timeout": (_above(0), "seconds"),
    "teacher.max_retries": (_at_least(0), ""),
    "teacher.backoff_base_s": (_at_least(0, optional=True), "seconds"),
    "teacher.backoff_max_s": (_at_least(0, optional=True), "seconds"),
    "teacher.batch_size": (_at_least(1), ""),
    "teacher.price_per_1k_prompt_tokens": (_at_least(0), ""),
    "teacher.price_per_1k_completion_tokens": (_at_least(0), ""),
    "teacher.seed": (_SEED, ""),
    "student.max_length": (_at_least(1), "tokens"),
    "student.max_question_tokens": (_at_least(1), "tokens"),
    "prompt_encoder.num_virtual_tokens": (_at_least(1), ""),
    "prompt_encoder.hidden_size": (_at_least(1), ""),
    "prompt_encoder.dropout": (_fraction(high_open=True), ""),
    "prompt_encoder.lr": (_above(0, optional=True), "null means train.lr"),
    "lora.r": (_at_least(1), ""),
    "lora.alpha": (_at_least(1), ""),
    "lora.dropout": (_fraction(high_open=True), ""),
    "adversarial.lambda_max": (_at_least(0), ""),
    "adversarial.gamma": (_at_least(0), ""),
    "adversarial.classifier_hidden": (_at_least(1), ""),
    "adversarial.classifier_dropout": (_fraction(high_open=True), ""),
    "adversarial.classifier_lr": (_above(0, optional=True), "null means train.lr"),
    "adversarial.domain_loss_weight": (_at_least(0), ""),
    "adversarial.classifier_max_grad_norm": (_at_least(0), "0 disables clipping"),
    "adversarial.target_batch_size": (_at_least(1, optional=True), "null means train.batch_size"),
    "train.lr": (_above(0), "a learning rate <= 0 does not descend the loss"),
    "train.weight_decay": (_at_least(0), ""),
    "train.batch_size": (_at_least(1), ""),
    "train.grad_accum": (_at_least(1), ""),
    "train.max_steps": (_at_least(1), ""),
    "train.warmup_ratio": (_fraction(), "a fraction of train.max_steps"),
    "train.max_grad_norm": (_at_least(0), "0 disables clipping"),
    "train.activation_memory_budget": (_fraction(low_open=True), "the fraction of activation memory kept; 1 keeps all"),
    "train.save_every": (_at_least(0), "0 saves only at the end"),
    "train.keep_checkpoints": (_at_least(0), "0 keeps every checkpoint"),
    "train.log_every": (_at_least(1), ""),
    "eval.batch_size": (_at_least(1), ""),
    "eval.max_new_tokens": (_at_least(1), ""),
    "eval.exact_top_logits": (_at_least(0), "0 turns the fp32 rescoring off"),
    "eval.max_examples": (_at_least(1, optional=True), "null means the whole split"),
    "eval.seed": (_SEED, ""),
    "report.bootstrap_samples": (_at_least(1), ""),
    "report.feature_examples": (_at_least(1), ""),
}
"""The range of every numeric field (floats must also be finite: checked for all of them)."""

_NON_EMPTY = ("name", "output_dir", "teacher.model", "teacher.api_key_env", "student.model")
_SPLITS = ("train", "val", "test")
_DEVICE_RE = re.compile(r"auto|cpu|cuda(:\d+)?")
_ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
TASK_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_\-]*")
"""What a custom task may be called: it names folders (``eval/MODEL/TASK``), so no ``/`` or ``..``."""


def _value_at(cfg: RunConfig, dotted: str) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        node = getattr(node, part)
    return node


def _url_problem(url: str) -> str | None:
    """Why ``url`` is not an http(s) endpoint, or None."""
    from urllib.parse import urlsplit

    if any(c.isspace() for c in url):
        return "contains whitespace"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return "must start with http:// or https://"
    try:
        host, _ = parts.hostname, parts.port  # .port raises on a malformed port
    except ValueError:
        return "has a malformed port"
    return None if host else "has no host"


def known_task_names(data: DataConfig) -> list[str]:
    """Every task ``data`` can name: the 12 datasets, the synthetic tasks and its custom tasks."""
    from prada.data.synthetic import SYNTHETIC_TASKS  # the registry imports this module
    from prada.data.tasks import BUILTIN_TASKS

    return [*BUILTIN_TASKS, *SYNTHETIC_TASKS, *(c.name for c in data.custom_tasks)]


def validate(cfg: RunConfig) -> list[str]:
    """Every rule a built config must satisfy: numeric ranges (``_RANGES``), finite floats,
    non-empty names, URLs, task names, and the rules across fields. One message per problem, each
    naming the dotted key, the offending value and the valid range or set.

    ``config_from_dict`` (hence ``load_config``) runs it, so a config read from a file or built
    from overrides is valid before any stage writes a file.
    """
    problems: list[str] = []
    flat = _flatten(dataclasses.asdict(cfg))
    non_finite = {k for k, v in flat.items() if isinstance(v, float) and not math.isfinite(v)}
    problems += [f"{k}: {flat[k]} is not a finite number" for k in sorted(non_finite)]
    for key, (check, why) in _RANGES.items():
        value = _value_at(cfg, key)
        if key in non_finite:
            continue
        rule = check(value)
        if rule:
            problems.append(f"{key}: {value!r} {rule}" + (f" ({why})" if why else ""))
    for key in _NON_EMPTY:
        if not str(_value_at(cfg, key)).strip():
            problems.append(f"{key}: must not be empty")
    problems += _check_grid(cfg)
    problems += _check_teacher(cfg.teacher)
    problems += _check_tasks(cfg.data)
    problems += _check_eval(cfg)
    modules = cfg.lora.target_modules
    if not modules or (isinstance(modules, tuple) and not all(m.strip() for m in modules)):
        problems.append(f"lora.target_modules: {cfg.lora.target_modules!r} must name modules "
                        "(e.g. all-linear or [q_proj, v_proj])")
    return problems


def _check_grid(cfg: RunConfig) -> list[str]:
    problems = []
    for m in cfg.methods:
        if m not in METHODS:
            problems.append(f"methods: unknown method '{m}'{_closest(m, METHODS)}; valid: {list(METHODS)}")
    if not cfg.methods:
        problems.append("methods: at least one method is needed")
    if len(set(cfg.methods)) != len(cfg.methods):
        problems.append(f"methods: duplicate methods in {cfg.methods}")
    adversarial = [m for m in METHODS if METHOD_SPECS[m].adversary]
    if not cfg.data.targets and any(m in adversarial for m in cfg.methods):
        listed = "/".join(f"'{m}'" for m in adversarial)
        problems.append(f"data.targets: methods {listed} need at least one target task")
    if not cfg.seeds:
        problems.append("seeds: at least one seed is needed")
    if len(set(cfg.seeds)) != len(cfg.seeds):
        problems.append(f"seeds: duplicate seeds in {cfg.seeds}")
    problems += [f"seeds: {s} must be in [0, {_SEED_LIMIT})" for s in cfg.seeds if not 0 <= s < _SEED_LIMIT]
    for key in ("data.seed", "teacher.seed", "eval.seed"):
        if _value_at(cfg, key) >= _SEED_LIMIT:
            problems.append(f"{key}: {_value_at(cfg, key)} must be < {_SEED_LIMIT}")
    return problems


def _check_teacher(t: TeacherConfig) -> list[str]:
    problems = []
    if t.base_url is not None:
        why = _url_problem(t.base_url)
        if why:
            problems.append(f"teacher.base_url: {t.base_url!r} {why} (e.g. http://127.0.0.1:8000/v1)")
    if t.api_key_env.strip() and not _ENV_NAME_RE.fullmatch(t.api_key_env):
        problems.append(f"teacher.api_key_env: {t.api_key_env!r} is not an environment variable name "
                        "(it names the variable that holds the key, e.g. OPENAI_API_KEY; never the key)")
    if t.backoff_base_s is not None and t.backoff_max_s is not None and t.backoff_max_s < t.backoff_base_s:
        problems.append(f"teacher.backoff_max_s: {t.backoff_max_s} must be >= teacher.backoff_base_s "
                        f"({t.backoff_base_s})")
    for key, value in (("teacher.replay_dir", t.replay_dir),):
        if value is not None and not value.strip():
            problems.append(f"{key}: must not be empty (null means the default)")
    return problems


def _check_tasks(data: DataConfig) -> list[str]:
    problems = []
    reserved = known_task_names(DataConfig())
    seen: set[str] = set()
    for i, task in enumerate(data.custom_tasks):
        where = f"data.custom_tasks[{i}]"
        if not TASK_NAME_RE.fullmatch(task.name):
            problems.append(f"{where}.name: {task.name!r} is not a valid task name (a letter, then letters, "
                            "digits, '_' or '-'; it names output folders)")
        elif task.name in reserved:
            problems.append(f"{where}.name: '{task.name}' is a built-in task; choose another name")
        elif task.name in seen:
            problems.append(f"{where}.name: '{task.name}' is already the name of an earlier custom task")
        seen.add(task.name)
        if not task.path.strip():
            problems.append(f"{where}.path: must name a JSONL or JSON file")
        if not 0 < task.test_fraction < 1:
            problems.append(f"{where}.test_fraction: {task.test_fraction!r} must be in (0, 1)")
        for key in ("question_field", "answer_field"):
            if not getattr(task, key).strip():
                problems.append(f"{where}.{key}: must not be empty")
        for key in ("choices_field", "rationale_field"):
            value = getattr(task, key)
            if value is not None and not value.strip():
                problems.append(f"{where}.{key}: must not be empty (null means none)")
    valid = known_task_names(data)
    for key, names in (("data.source", [data.source]), ("data.targets", data.targets)):
        for name in names:
            if name not in valid:
                problems.append(f"{key}: unknown task '{name}'{_closest(name, valid)}; valid: {', '.join(valid)}")
    if data.source in data.targets:
        problems.append(f"data.targets: the source task '{data.source}' cannot also be a target")
    if len(set(data.targets)) != len(data.targets):
        problems.append(f"data.targets: duplicate targets in {data.targets}")
    for key, value in (("data.data_dir", data.data_dir),):
        if value is not None and not value.strip():
            problems.append(f"{key}: must not be empty (null means $PRADA_DATA_DIR)")
    return problems


def _check_eval(cfg: RunConfig) -> list[str]:
    problems = []
    if cfg.eval.split not in _SPLITS:
        problems.append(f"eval.split: '{cfg.eval.split}' is not one of {list(_SPLITS)}"
                        f"{_closest(cfg.eval.split, _SPLITS)}")
    elif cfg.eval.split == "val" and cfg.data.val_fraction <= 0:
        problems.append("eval.split: 'val' needs data.val_fraction > 0 (it carves the val split)")
    if not _DEVICE_RE.fullmatch(cfg.eval.device):
        problems.append(f"eval.device: '{cfg.eval.device}' is not one of auto, cpu, cuda, cuda:N")
    return problems


def _set_dotted(raw: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = raw
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def parse_override(text: str) -> tuple[str, Any]:
    """``"train.lr=1e-4"`` -> ``("train.lr", 1e-4)``; the value is parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"override '{text}': expected KEY=VALUE, e.g. train.lr=1e-4")
    key, _, value_text = text.partition("=")
    key = key.strip()
    if not key:
        raise ConfigError(f"override '{text}': empty key")
    try:
        value = yaml.safe_load(value_text) if value_text.strip() else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"override '{text}': cannot parse value ({e})") from None
    # YAML 1.1 reads an unquoted 1e-4 as a string (it wants a dot); users mean a number. A quoted
    # value ("1e-4") stays a string.
    quoted = value_text.strip()[:1] in ("'", '"')
    if isinstance(value, str) and not quoted and _NUMBER.fullmatch(value):
        value = float(value)
    return key, value


def load_raw(path: str | Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    data = path.read_bytes()
    try:
        raw = yaml.safe_load(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text (byte 0x{data[e.start]:02x}); save the file as "
                          "UTF-8") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: malformed YAML ({getattr(e, 'problem', e)})") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    return raw


def load_config(path: str | Path | None, overrides: typing.Sequence[str] = (), *, scope: Scope = "run") -> RunConfig:
    """Read a YAML config (or defaults when ``path`` is None) and apply dotted overrides; ``scope``
    as in ``config_from_dict``."""
    raw = load_raw(path)
    for text in overrides:
        key, value = parse_override(text)
        _set_dotted(raw, key, value)
    return config_from_dict(raw, source=str(path) if path else "config", scope=scope)


def with_overrides(cfg: RunConfig, overrides: typing.Mapping[str, Any] | typing.Sequence[str], *,
                   scope: Scope = "run", source: str = "overrides") -> RunConfig:
    """A copy of ``cfg`` with dotted overrides applied (``{"train.lr": 1e-4}`` or
    ``["train.lr=1e-4"]``), typed and validated again like a loaded config. A ``RunConfig`` is
    frozen: this, ``load_config`` and ``dataclasses.replace`` are the ways to change one.

    >>> cfg = with_overrides(RunConfig(methods=("ft_cot",)), {"train.lr": 1e-4})
    >>> cfg.train.lr
    0.0001
    """
    pairs = overrides.items() if isinstance(overrides, typing.Mapping) else map(parse_override, overrides)
    raw = dataclasses.asdict(cfg)
    for key, value in pairs:
        _set_dotted(raw, key, value)
    return config_from_dict(raw, source=source, scope=scope)


def check_method(cfg: RunConfig, method: str) -> None:
    """Refuse to train ``method`` under ``cfg``: ``TrainingError`` for an unknown name (listing the
    valid ones), ``ConfigError`` when the config lacks what the method needs. ``validate`` applies
    the same rule to every method of ``cfg.methods``; training calls this for the method it is given
    (``prada train --method`` need not be one of them)."""
    spec = method_spec(method)
    if spec.adversary and not cfg.data.targets:
        raise ConfigError(f"method '{method}' needs at least one target task in data.targets")


def to_dict(cfg: Any) -> dict[str, Any]:
    """The config as plain data, for writing: credentials embedded in URLs (``teacher.base_url``)
    are removed (``prada.redact``), so no file holds them; the ``RunConfig`` keeps them. Tuples
    become lists, as a config file writes them (``yaml.safe_dump`` cannot write a tuple).

    >>> to_dict(RunConfig(methods=("ft_cot",)))["methods"]
    ['ft_cot']
    """
    plain: dict[str, Any] = _lists(redact_values(dataclasses.asdict(cfg)))
    return plain


def _lists(obj: Any) -> Any:
    """``obj`` with every tuple, at any depth, turned into a list."""
    if isinstance(obj, dict):
        return {key: _lists(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_lists(value) for value in obj]
    return obj


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


REMOVED_KEYS: dict[str, str] = {
    "train.seed": "it was never read: training is seeded by `seeds`, subsets by data.seed and eval.seed",
    "train.num_workers": "it was never read: batches are built in the training process",
}
"""Keys earlier versions had, with why they went. A config that holds one (a run directory's saved
``config.yaml``, an old experiment file) still loads: the key is dropped with a warning, and it is
ignored when a saved config is compared with the current one (``config_changes``)."""


def drop_removed_keys(raw: dict[str, Any], source: str = "config") -> dict[str, Any]:
    """``raw`` without the ``REMOVED_KEYS`` it holds (a copy; ``raw`` is left as it is).

    >>> drop_removed_keys({"train": {"seed": 3, "lr": 0.1}})
    {'train': {'lr': 0.1}}
    """
    flat = {k for k in _flatten(raw) if k in REMOVED_KEYS}
    if not flat:
        return raw
    out = copy.deepcopy(raw)
    for key in sorted(flat):
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            node = node[part]
        del node[leaf]
        logger.warning("%s: %s is ignored (%s); remove it", source, key, REMOVED_KEYS[key])
    return out


LEGACY_VALUES: dict[str, Any] = {"eval.dtype": "float32", "eval.exact_top_logits": 0, "train.attention": "model",
                                 "train.activation_memory_budget": 1.0, "eval.decode_attention": "sdpa",
                                 "train.compile": "no", "teacher.dtype": "auto"}
"""What a key added after a config was saved meant before it existed: a run directory made then
is compared as if it had this value (its evaluations ran in fp32, with plain logits; its students
trained uncompiled, with the model's own attention; a local teacher ran in what ``auto`` picks)."""

def _not_bf16(flat: dict[str, Any]) -> bool:
    return flat.get("train.mixed_precision") in ("no", "fp16")


def _layers_not_compiled(flat: dict[str, Any]) -> bool:
    """``train.compile`` is ``no``, or ``auto`` off the bf16 path (``hardware.resolve_compile``)."""
    compile_ = flat.get("train.compile", "auto")
    return compile_ == "no" or (compile_ == "auto" and _not_bf16(flat))


INERT_WHEN: dict[str, typing.Callable[[dict[str, Any]], bool]] = {
    "eval.exact_top_logits": lambda flat: flat.get("eval.dtype") == "float32",
    # the kernel decodes bf16 only, with the hf backend
    "eval.decode_attention": lambda flat: flat.get("eval.dtype") in ("float32", "float16")
    or flat.get("eval.backend") == "vllm",
    # `auto` is the model's attention unless the layers are compiled in bf16
    "train.attention": lambda flat: _not_bf16(flat) or _layers_not_compiled(flat),
    # only compiled layers have a partitioner to budget
    "train.activation_memory_budget": _layers_not_compiled,
    "train.compile": _layers_not_compiled,
    # only the local (hf) teacher loads weights in a dtype
    "teacher.dtype": lambda flat: flat.get("teacher.backend") != "hf",
}
"""Keys that change nothing under some settings (of the flattened config): not compared when both
configs have those settings (fp32 generation has no lower-precision logits to rescore)."""


def config_changes(saved: dict[str, Any], cfg: RunConfig, mutable: typing.Iterable[str]) -> list[str]:
    """``key: old -> new`` for every dotted key that differs between a saved config and ``cfg``,
    skipping keys under any prefix in ``mutable`` (e.g. ``"report"`` covers ``report.*``). A key the
    saved config lacks takes its ``LEGACY_VALUES`` entry, if any."""
    old, new = _flatten(redact_values(saved)), _flatten(to_dict(cfg))
    old = {k: v for k, v in old.items() if k not in REMOVED_KEYS}
    old = {**{k: v for k, v in LEGACY_VALUES.items() if k not in old}, **old}
    keys = sorted(k for k in set(old) | set(new)
                  if old.get(k) != new.get(k) and not any(k == m or k.startswith(m + ".") for m in mutable)
                  and not (k in INERT_WHEN and INERT_WHEN[k](old) and INERT_WHEN[k](new)))
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys]


def dump_yaml(cfg: RunConfig) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, allow_unicode=True)
