"""Typed experiment configuration.

One dataclass per concern, every field documented where it is declared. A YAML file mirrors
``RunConfig`` 1:1; command-line overrides are dotted (``train.lr=1e-4``). Unknown keys and
ill-typed values are collected and reported together, each with the closest valid name.

>>> cfg = load_config(None, ["train.max_steps=5", "methods=[ft_cot, prada]", "data.targets=[addsub]"])
>>> cfg.train.max_steps, cfg.methods
(5, ['ft_cot', 'prada'])
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

import yaml

from prada.errors import ConfigError

METHODS = ("ft", "ft_cot", "ptuning_cot", "dann_cot", "prada")
"""Training methods. ``ft``: answer only; ``ft_cot``: Fine-tune-CoT; ``ptuning_cot``: + prompt
encoder; ``dann_cot``: + domain adversary; ``prada``: prompt encoder + domain adversary."""

Backbone = Literal["frozen", "lora", "full"]
TeacherBackend = Literal["openai", "hf", "vllm", "replay", "gold"]


@dataclass
class CustomTaskConfig:
    """A user's own dataset, registered as a task under ``name``."""

    name: str = ""
    """Task name used in ``data.source`` / ``data.targets``."""
    path: str = ""
    """A JSONL file (one object per line) or a JSON list of objects."""
    answer_type: Literal["number", "choice", "yes_no", "string"] = "string"
    """How answers are extracted and compared."""
    question_field: str = "question"
    answer_field: str = "answer"
    choices_field: str | None = "choices"
    """A dict {"A": text, ...} or a list of option texts; appended to the question as
    ``Answer Choices: (A) ... (B) ...``. Missing or null means not multiple choice."""
    rationale_field: str | None = "rationale"
    """Optional gold rationale (usable with ``teacher.backend: gold``)."""
    test_fraction: float = 0.3
    """Fraction held out as the test split (seeded, deterministic)."""
    category: str = "custom"


@dataclass
class DataConfig:
    """Which tasks to use and where their files are."""

    data_dir: str | None = None
    """Directory laid out like ``shared/data`` (raw/, finetune_cot/, teacher/). Falls back to
    ``$PRADA_DATA_DIR``. Not needed for synthetic or custom tasks."""
    source: str = "multiarith"
    """Labeled source task (its train split is distilled)."""
    targets: list[str] = field(default_factory=list)
    """Target tasks: their train-split *questions* feed the domain classifier (never their
    answers), their test splits are evaluated."""
    custom_tasks: list[CustomTaskConfig] = field(default_factory=list)
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


@dataclass
class TeacherConfig:
    """Stage 1: the teacher that writes rationales for the source train questions."""

    backend: TeacherBackend = "replay"
    """``openai`` (any OpenAI-compatible endpoint), ``hf`` (local transformers model), ``vllm``
    (offline vLLM), ``replay`` (recorded completions), ``gold`` (the dataset's own rationales)."""
    model: str = "text-davinci-002"
    """Model name sent to the endpoint, a local path/alias for ``hf``/``vllm``, or the recorded
    teacher's folder name for ``replay``."""
    prompt: Literal["zero_shot_cot", "few_shot_cot"] = "zero_shot_cot"
    samples: int = 1
    """D: samples per question. Sample 0 is greedy, samples 1..D-1 use ``temperature``."""
    temperature: float = 0.7
    top_p: float = 1.0
    max_rationale_tokens: int = 128
    max_answer_tokens: int = 32
    chat: bool = False
    """Send prompts through the chat format (chat completions / the tokenizer's chat template)."""
    base_url: str | None = None
    """OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1 (None: the SDK default)."""
    api_key_env: str = "OPENAI_API_KEY"
    """Name of the environment variable holding the API key (keys never go in config files)."""
    concurrency: int = 16
    """Maximum requests in flight (``openai`` backend)."""
    request_timeout: float = 60.0
    max_retries: int = 6
    backoff_base_s: float | None = None
    """First retry delay; doubles per attempt with full jitter (None: 0.5 s, or
    ``$PRADA_TEACHER_BACKOFF_BASE_S``). A server's ``Retry-After`` takes precedence."""
    backoff_max_s: float | None = None
    """Cap on one retry delay (None: 30 s, or ``$PRADA_TEACHER_BACKOFF_MAX_S``)."""
    use_n: bool = True
    """Ask for several samples in one request (``n``) when the server supports it."""
    batch_size: int = 8
    """Batch size of local generation (``hf`` backend)."""
    replay_dir: str | None = None
    """Recorded completions folder; default ``{data_dir}/teacher/{model}/{prompt}``."""
    price_per_1k_prompt_tokens: float = 0.0
    price_per_1k_completion_tokens: float = 0.0
    seed: int = 0


@dataclass
class StudentConfig:
    """The student: any Hugging Face causal LM."""

    model: str = "smollm2-135m-instruct"
    """A built-in alias (``smollm2-135m-instruct``), a local folder, or a hub id (offline: must
    already be in the local cache)."""
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "float32"
    trust_remote_code: bool = False
    chat_template: bool = False
    """Wrap the input in the tokenizer's chat template instead of Fine-tune-CoT's ``Q ###``."""
    max_length: int = 256
    """Max tokens of prompt + completion in training; longer examples are truncated with a
    warning (the completion's end is cut, never the question)."""
    max_question_tokens: int = 192
    """Questions longer than this are refused with an error naming the example."""


@dataclass
class PromptEncoderConfig:
    """P-Tuning (Liu et al. 2021), as PEFT's ``PromptEncoderConfig``."""

    num_virtual_tokens: int = 20
    encoder_type: Literal["mlp", "lstm"] = "mlp"
    hidden_size: int = 128
    """Hidden size of the reparameterisation encoder."""
    dropout: float = 0.0
    lr: float | None = None
    """Learning rate of the prompt encoder (None: ``train.lr``)."""


@dataclass
class LoraConfig:
    """LoRA through PEFT (used when ``train.backbone: lora``)."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: str | list[str] = "all-linear"


@dataclass
class AdversarialConfig:
    """Stage 3: the domain classifier behind the gradient reversal layer (DANN)."""

    lambda_max: float = 0.1
    """λ at the end of training; λ_p = λ_max·(2/(1+exp(−γ·p))−1), p = step / total steps."""
    gamma: float = 10.0
    classifier_hidden: int = 256
    classifier_dropout: float = 0.1
    classifier_lr: float | None = 1e-3
    """Learning rate of the domain classifier (None: ``train.lr``). A freshly initialised MLP at a
    fine-tuning LR (~5e-5) stays at chance, and an adversary at chance reverses no useful gradient."""
    domain_loss_weight: float = 1.0
    """Weight of L_d in the descent objective (the GRL already scales the reversed gradient by λ)."""
    target_batch_size: int | None = None
    """Unlabeled target questions per step (None: ``train.batch_size``), split across targets."""
    pooling: Literal["question_mean", "question_last"] = "question_mean"
    """How question-token hidden states are pooled into the features the classifier sees."""


@dataclass
class TrainConfig:
    """Stages 2-3: the training loop."""

    backbone: Backbone = "full"
    """``frozen`` (paper-faithful for large students), ``lora`` or ``full`` fine-tuning. Hold it
    equal across compared methods."""
    lr: float = 5e-5
    weight_decay: float = 0.0
    batch_size: int = 8
    grad_accum: int = 1
    max_steps: int = 120
    """Optimizer steps (not micro-batches)."""
    warmup_ratio: float = 0.05
    lr_schedule: Literal["linear", "cosine", "constant"] = "linear"
    max_grad_norm: float = 1.0
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"
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
    seed: int = 0
    num_workers: int = 0


@dataclass
class EvalConfig:
    """Evaluation of students (and of the untrained base model)."""

    split: str = "test"
    batch_size: int = 16
    max_new_tokens: int = 128
    max_examples: int | None = None
    """Seeded subset of each evaluated split (None: all); the subset is the same for every model."""
    seed: int = 0
    zero_shot_baseline: bool = True
    """Also evaluate the untrained student with Zero-Shot-CoT prompting."""
    tasks: Literal["all", "source"] = "all"
    """Evaluate the source and every target (``all``), or the source only (``source``): a
    hyper-parameter sweep on the source's ``val`` split must not look at the targets."""
    backend: Literal["hf", "vllm"] = "hf"
    device: str = "auto"
    """Where the ``hf`` backend generates and features are extracted: ``auto`` (this process's
    CUDA GPU when one is visible, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``."""


@dataclass
class ReportConfig:
    bootstrap_samples: int = 1000
    feature_examples: int = 200
    """Questions per domain used for t-SNE and proxy A-distance."""
    plots: bool = True


@dataclass
class RunConfig:
    """One experiment: ``prada run CONFIG.yaml`` runs the grid methods × seeds."""

    name: str = "experiment"
    output_dir: str = "runs/experiment"
    methods: list[str] = field(default_factory=lambda: ["ft_cot", "prada"])
    seeds: list[int] = field(default_factory=lambda: [0])
    data: DataConfig = field(default_factory=DataConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    prompt_encoder: PromptEncoderConfig = field(default_factory=PromptEncoderConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    adversarial: AdversarialConfig = field(default_factory=AdversarialConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    report: ReportConfig = field(default_factory=ReportConfig)

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
    if dataclasses.is_dataclass(tp):
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

    Unknown keys and ill-typed values are always problems; with ``scope="evaluate"`` the semantic
    checks are only those of the keys evaluation reads (``concerns_evaluation``).
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping, got {type(raw).__name__}")
    problems: list[str] = []
    cfg = _build(RunConfig, raw, "", problems)
    if not problems:
        problems.extend(p for p in validate(cfg) if scope == "run" or concerns_evaluation(p))
    if problems:
        listing = "\n  - ".join(problems)
        raise ConfigError(f"{source}: invalid config:\n  - {listing}")
    return cfg


def validate(cfg: RunConfig) -> list[str]:
    """Semantic checks that need more than one field."""
    problems = []
    for m in cfg.methods:
        if m not in METHODS:
            problems.append(f"methods: unknown method '{m}'{_closest(m, METHODS)}; valid: {list(METHODS)}")
    if not cfg.methods:
        problems.append("methods: at least one method is needed")
    if cfg.data.source in cfg.data.targets:
        problems.append(f"data.targets: the source task '{cfg.data.source}' cannot also be a target")
    if len(set(cfg.data.targets)) != len(cfg.data.targets):
        problems.append(f"data.targets: duplicate targets in {cfg.data.targets}")
    if not cfg.data.targets and any(m in ("dann_cot", "prada") for m in cfg.methods):
        problems.append("data.targets: methods 'dann_cot'/'prada' need at least one target task")
    if cfg.teacher.samples < 1:
        problems.append("teacher.samples: must be >= 1")
    if cfg.train.max_steps < 1:
        problems.append("train.max_steps: must be >= 1")
    if cfg.train.batch_size < 1 or cfg.train.grad_accum < 1:
        problems.append("train.batch_size and train.grad_accum must be >= 1")
    if not 0.0 <= cfg.data.val_fraction < 1.0:
        problems.append("data.val_fraction: must be in [0, 1)")
    if cfg.adversarial.lambda_max < 0:
        problems.append("adversarial.lambda_max: must be >= 0")
    if cfg.prompt_encoder.num_virtual_tokens < 1:
        problems.append("prompt_encoder.num_virtual_tokens: must be >= 1")
    if not cfg.seeds:
        problems.append("seeds: at least one seed is needed")
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
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
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


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def config_changes(saved: dict[str, Any], cfg: RunConfig, mutable: typing.Iterable[str]) -> list[str]:
    """``key: old -> new`` for every dotted key that differs between a saved config and ``cfg``,
    skipping keys under any prefix in ``mutable`` (e.g. ``"report"`` covers ``report.*``)."""
    old, new = _flatten(saved), _flatten(to_dict(cfg))
    keys = sorted(k for k in set(old) | set(new)
                  if old.get(k) != new.get(k) and not any(k == m or k.startswith(m + ".") for m in mutable))
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys]


def dump_yaml(cfg: RunConfig) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, allow_unicode=True)
