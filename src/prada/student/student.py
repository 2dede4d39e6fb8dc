"""The student: a causal LM backbone (frozen, LoRA or fully trained) + an optional P-Tuning prompt encoder.

Any combination works. With a prompt encoder, ``num_virtual_tokens`` trainable embeddings
produced by PEFT's ``PromptEncoder`` (MLP or LSTM reparameterisation) are prepended to the input
embeddings, at the far left (before any left padding), exactly where PEFT puts them; the
attention mask is extended with ones and position ids follow the attention mask, so a prompt's
tokens get the same positions whatever the padding. Outputs are reported on the *input*
positions: the virtual positions are removed before pooling and before computing logits.

The forward pass runs the decoder (not the ``*ForCausalLM`` head) so only the last hidden state is
kept, and it applies the LM head only where it is needed: at positions that predict a label (for
``lm_loss``) and, when asked, everywhere (``return_logits``).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from prada.config import BACKBONES, Backbone, LoraConfig, PromptEncoderConfig, RunConfig, StudentConfig
from prada.errors import CheckpointError, ConfigError, DataError, EvaluationError, PradaError
from prada.io import atomic_dir, read_json, write_json_atomic
from prada.student.checkpoint_meta import CheckpointSpec, parse_checkpoint_meta
from prada.student.compile import inductor_with_memory_budget
from prada.student.format import IGNORE_INDEX
from prada.student.loss import token_cross_entropy, weighted_linear_cross_entropy
from prada.student.model import load_base_model, load_causal_lm, load_tokenizer

logger = logging.getLogger(__name__)

CHECKPOINT_FILE = "prada_checkpoint.json"
CHECKPOINT_FORMAT = 1
Pooling = Literal["question_mean", "question_last"]


@dataclass
class StudentOutput:
    """What ``Student.forward`` returns. Positions are the input's (virtual tokens removed)."""

    lm_loss: torch.Tensor | None
    """Token cross-entropy on label positions, mean per example, then mean over the examples that
    have at least one label (fp32). None without ``labels``; 0 when no example has a label."""
    features: torch.Tensor | None
    """(B, D) fp32: last-layer hidden states pooled over ``question_mask`` (None without it)."""
    logits: torch.Tensor | None = None
    """(B, T, V) only with ``return_logits=True``."""
    hidden_states: torch.Tensor | None = None
    """(B, T, D) last-layer hidden states, only with ``return_hidden=True``."""
    per_example_loss: torch.Tensor | None = None
    """(B,) fp32 mean token loss of each example (0 where it has no label)."""
    num_target_tokens: int = 0


def pool_features(hidden: torch.Tensor, question_mask: torch.Tensor, pooling: Pooling = "question_mean") -> torch.Tensor:
    """Pool ``hidden (B, T, D)`` over ``question_mask (B, T)`` -> ``(B, D)`` in fp32.

    ``question_mean`` averages the question's tokens; ``question_last`` takes its last token. A row
    without question tokens pools to zeros.
    """
    mask = question_mask.to(torch.float32)  # (B, T)
    if pooling == "question_mean":
        summed = torch.einsum("btd,bt->bd", hidden.float(), mask)  # (B, D)
        return summed / mask.sum(dim=1, keepdim=True).clamp(min=1.0)
    if pooling == "question_last":
        positions = torch.arange(mask.shape[1], device=mask.device, dtype=torch.float32)  # (T,)
        last = (mask * (positions + 1)).argmax(dim=1)  # (B,) index of the last question token
        pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), last].float()  # (B, D)
        return pooled * (mask.sum(dim=1, keepdim=True) > 0)
    raise ConfigError(f"pooling '{pooling}': valid values are ['question_mean', 'question_last']")


def build_prompt_encoder(cfg: PromptEncoderConfig, token_dim: int) -> nn.Module:
    """PEFT's P-Tuning ``PromptEncoder`` for ``cfg`` (MLP: 3 linear layers; LSTM: bi-LSTM + MLP)."""
    from peft import PromptEncoderConfig as PeftPromptEncoderConfig
    from peft.tuners.p_tuning import PromptEncoder

    if cfg.num_virtual_tokens < 1:
        raise ConfigError("prompt_encoder.num_virtual_tokens: must be >= 1")
    peft_cfg = PeftPromptEncoderConfig(
        task_type="CAUSAL_LM",
        num_virtual_tokens=cfg.num_virtual_tokens,
        token_dim=token_dim,
        num_transformer_submodules=1,
        encoder_reparameterization_type=cfg.encoder_type.upper(),
        encoder_hidden_size=cfg.hidden_size,
        encoder_dropout=cfg.dropout,
    )
    return PromptEncoder(peft_cfg)


def _peft_lora_config(cfg: LoraConfig):
    from peft import LoraConfig as PeftLoraConfig

    return PeftLoraConfig(
        task_type="CAUSAL_LM",
        r=cfg.r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        # PEFT takes a module name pattern or a list of names (a config holds them as a tuple).
        target_modules=cfg.target_modules if isinstance(cfg.target_modules, str) else list(cfg.target_modules),
    )


class Student(nn.Module):
    """Backbone (``frozen`` | ``lora`` | ``full``) + optional prompt encoder.

    Build one with ``Student.build(student_cfg, backbone, prompt_encoder_cfg, lora_cfg)``, or from
    a loaded HF model with the constructor. ``self.backbone`` is the HF model (a ``PeftModel`` with
    LoRA); ``self.prompt_encoder`` is None or PEFT's ``PromptEncoder`` (kept in fp32).
    """

    virtual_token_ids: torch.Tensor
    """(V,) ``arange(num_virtual_tokens)``, a buffer (with a prompt encoder only)."""

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        student_cfg: StudentConfig,
        backbone: Backbone = "full",
        prompt_encoder_cfg: PromptEncoderConfig | None = None,
        lora_cfg: LoraConfig | None = None,
        *,
        _lora_already_applied: bool = False,
    ) -> None:
        super().__init__()
        if backbone not in BACKBONES:
            raise ConfigError(f"train.backbone '{backbone}': valid values are {list(BACKBONES)}")
        self.student_cfg = student_cfg
        self.backbone_mode: Backbone = backbone
        self.prompt_encoder_cfg = prompt_encoder_cfg
        self.lora_cfg = lora_cfg if backbone == "lora" else None
        self.tokenizer = tokenizer
        if backbone == "lora" and not _lora_already_applied:
            from peft import get_peft_model

            if lora_cfg is None:
                raise ConfigError("train.backbone 'lora' needs a LoraConfig (the 'lora' section)")
            for p in model.parameters():
                p.requires_grad_(False)
            model = get_peft_model(model, _peft_lora_config(lora_cfg))
        elif backbone == "full":
            for p in model.parameters():
                p.requires_grad_(True)
        elif backbone == "frozen":
            for p in model.parameters():
                p.requires_grad_(False)
        self.backbone: Any = model
        """The HF model (a ``PeftModel`` with LoRA)."""
        self.fused_lm_loss = True
        """Compute the LM loss with ``weighted_linear_cross_entropy`` when the head allows it
        (training only); False keeps the reference chunked head."""
        self.prompt_encoder: nn.Module | None = None
        if prompt_encoder_cfg is not None:
            token_dim = self.causal_lm.get_input_embeddings().embedding_dim
            device = self.causal_lm.get_input_embeddings().weight.device
            self.prompt_encoder = build_prompt_encoder(prompt_encoder_cfg, token_dim).to(device)
            self.register_buffer(
                "virtual_token_ids", torch.arange(prompt_encoder_cfg.num_virtual_tokens, device=device), persistent=False
            )

    # ------------------------------------------------------------------ construction
    @classmethod
    def build(
        cls,
        student_cfg: StudentConfig,
        backbone: Backbone = "full",
        prompt_encoder_cfg: PromptEncoderConfig | None = None,
        lora_cfg: LoraConfig | None = None,
    ) -> Student:
        """Load ``student_cfg.model`` and wrap it (a fresh prompt encoder / LoRA, seeded by the caller)."""
        model, tokenizer = load_base_model(student_cfg)
        return cls(model, tokenizer, student_cfg, backbone, prompt_encoder_cfg, lora_cfg)

    # ------------------------------------------------------------------ structure
    @property
    def causal_lm(self) -> Any:
        """The HF ``*ForCausalLM`` (with LoRA layers injected when the backbone is ``lora``); typed
        ``Any``: a ``PreTrainedModel`` of any architecture, its methods resolved at run time."""
        from peft import PeftModel

        return self.backbone.get_base_model() if isinstance(self.backbone, PeftModel) else self.backbone

    @property
    def num_virtual_tokens(self) -> int:
        cfg = self.prompt_encoder_cfg
        return cfg.num_virtual_tokens if self.prompt_encoder is not None and cfg is not None else 0

    @property
    def hidden_size(self) -> int:
        """D, the size of ``features``."""
        return self.causal_lm.get_input_embeddings().embedding_dim

    @property
    def device(self) -> torch.device:
        return self.causal_lm.get_input_embeddings().weight.device

    def trainable_parameters(self) -> dict[str, list[nn.Parameter]]:
        """``{"backbone": [...], "prompt_encoder": [...]}``: parameters with ``requires_grad``, per
        optimiser group (with LoRA, "backbone" holds only the LoRA matrices)."""
        return {
            "backbone": [p for p in self.backbone.parameters() if p.requires_grad],
            "prompt_encoder": [p for p in self.prompt_encoder.parameters()] if self.prompt_encoder is not None else [],
        }

    def num_parameters(self) -> dict[str, int]:
        """Counts: total, trainable backbone, prompt encoder."""
        groups = self.trainable_parameters()
        return {
            "total": sum(p.numel() for p in self.parameters()),
            "trainable_backbone": sum(p.numel() for p in groups["backbone"]),
            "prompt_encoder": sum(p.numel() for p in groups["prompt_encoder"]),
        }

    def virtual_token_embeddings(self, batch_size: int) -> torch.Tensor:
        """(B, V, D) virtual-token embeddings in the backbone's dtype."""
        if self.prompt_encoder is None:
            raise RuntimeError("this student has no prompt encoder")
        ids = self.virtual_token_ids.unsqueeze(0).expand(batch_size, -1)  # (B, V)
        embeds: torch.Tensor = self.prompt_encoder(ids)  # (B, V, D)
        return embeds.to(self.causal_lm.get_input_embeddings().weight.dtype)

    def _embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Token embeddings with the virtual tokens prepended: ((B, V+T, D), (B, V+T))."""
        embeds = self.causal_lm.get_input_embeddings()(input_ids)  # (B, T, D)
        if self.prompt_encoder is None:
            return embeds, attention_mask
        b = input_ids.shape[0]
        virtual = self.virtual_token_embeddings(b)  # (B, V, D)
        ones = attention_mask.new_ones((b, self.num_virtual_tokens))  # (B, V)
        return torch.cat([virtual, embeds], dim=1), torch.cat([ones, attention_mask], dim=1)

    def set_training_attention(self, name: str) -> None:
        """Switch the model to the attention implementation ``name`` (``train.attention``);
        ``sdpa_recompute`` is registered with transformers first. Checkpoints do not record it."""
        from prada.student import attention

        if name == attention.IMPLEMENTATION:
            attention.register()
        try:
            self.causal_lm.set_attn_implementation(name)
        except (ValueError, ImportError) as e:
            raise ConfigError(f"train.attention '{name}': {type(self.causal_lm).__name__} cannot use it ({e}); "
                              "set train.attention: model") from None

    def compile_layers(self, activation_memory_budget: float = 1.0) -> int:
        """``torch.compile`` every decoder layer in place (dynamic shapes); returns how many.

        The layers share one code object, so dynamo compiles one graph for all of them (their
        weights are graph inputs); the embeddings, the prompt encoder and the LM head stay eager.
        ``activation_memory_budget`` < 1 has the compiler recompute activations in the backward
        pass until the saved ones fit that fraction (``train.activation_memory_budget``).
        """
        layers = getattr(self.causal_lm.get_decoder(), "layers", None)
        if not isinstance(layers, nn.ModuleList) or len(layers) == 0:
            raise ConfigError(
                f"train.compile: the model {type(self.causal_lm).__name__} has no decoder 'layers' list to "
                "compile; set train.compile: no"
            )
        backend = "inductor" if activation_memory_budget >= 1.0 else inductor_with_memory_budget(activation_memory_budget)
        for layer in layers:
            layer.compile(dynamic=True, backend=backend)  # one backend object: one graph for all layers
        return len(layers)

    def _plain_head_weight(self) -> torch.Tensor | None:
        """The LM head's weight when logits are exactly ``hidden @ weight.T`` (a bias-free
        ``nn.Linear``, no logit scaling or soft-capping), else None."""
        lm = self.causal_lm
        head = lm.get_output_embeddings()
        if type(head) is not nn.Linear or head.bias is not None:
            return None
        if getattr(lm.config, "logits_scaling", None) or getattr(lm.config, "final_logit_softcapping", None):
            return None
        return head.weight

    def _lm_head(self, hidden: torch.Tensor) -> torch.Tensor:
        """LM-head logits (…, V) in fp32, with the model's final logit scaling/soft-capping if any."""
        lm = self.causal_lm
        logits = lm.get_output_embeddings()(hidden).float()
        config = lm.config
        scaling = getattr(config, "logits_scaling", None)  # Granite
        if scaling:
            logits = logits / scaling
        softcap = getattr(config, "final_logit_softcapping", None)  # Gemma-2
        if softcap:
            logits = torch.tanh(logits / softcap) * softcap
        return logits

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor | None = None,
        question_mask: torch.Tensor | None = None,
        *,
        pooling: Pooling = "question_mean",
        return_logits: bool = False,
        return_hidden: bool = False,
    ) -> StudentOutput:
        """One pass: ``lm_loss`` on label positions and pooled question ``features``.

        input_ids, attention_mask, labels, question_mask: (B, T), as built by the collators.
        """
        embeds, mask = self._embed(input_ids, attention_mask)  # (B, V+T, D), (B, V+T)
        position_ids = (mask.long().cumsum(dim=-1) - 1).clamp(min=0)  # (B, V+T): follow the mask
        decoder = self.causal_lm.get_decoder()
        out = decoder(inputs_embeds=embeds, attention_mask=mask, position_ids=position_ids, use_cache=False)
        hidden = out.last_hidden_state[:, self.num_virtual_tokens :]  # (B, T, D): virtual positions dropped

        lm_loss = per_example = None
        n_target = 0
        if labels is not None:
            shift_labels = labels[:, 1:]  # (B, T-1): token t predicts label t+1
            selected = shift_labels != IGNORE_INDEX  # (B, T-1)
            n_target = int(selected.sum())
            rows = selected.nonzero()[:, 0]  # (N,)
            counts = selected.sum(dim=1)  # (B,)
            has = counts > 0
            label_hidden, label_ids = hidden[:, :-1][selected], shift_labels[selected]  # (N, D), (N,)
            # Logits only where there is a label, built in chunks (see prada.student.loss).
            head_weight = self._plain_head_weight() if torch.is_grad_enabled() and self.fused_lm_loss else None
            if head_weight is not None and n_target > 0:
                # mean over an example's tokens, then over the examples that have labels
                token_weights = 1.0 / (counts[rows].float() * has.sum())  # (N,)
                lm_loss, token_loss = weighted_linear_cross_entropy(label_hidden, head_weight, label_ids, token_weights)
            else:
                token_loss = token_cross_entropy(self._lm_head, label_hidden, label_ids)  # (N,)
            sums = torch.zeros(labels.shape[0], device=hidden.device, dtype=torch.float32).index_add(0, rows, token_loss)
            per_example = sums / counts.clamp(min=1)  # (B,)
            if head_weight is None or n_target == 0:
                lm_loss = per_example[has].mean() if bool(has.any()) else sums.sum() * 0.0
            else:
                per_example = per_example.detach()

        features = pool_features(hidden, question_mask, pooling) if question_mask is not None else None
        logits = self._lm_head(hidden) if return_logits else None  # (B, T, V)
        return StudentOutput(
            lm_loss=lm_loss,
            features=features,
            logits=logits,
            hidden_states=hidden if return_hidden else None,
            per_example_loss=per_example,
            num_target_tokens=n_target,
        )

    # ------------------------------------------------------------------ generation
    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **gen_kwargs: Any) -> torch.Tensor:
        """Generate from LEFT-padded prompts; returns only the new tokens (B, N), padded with pad id
        after EOS. ``gen_kwargs`` go to HF ``generate`` (default: greedy, pad/EOS from the tokenizer)."""
        lm = self.causal_lm
        gen_kwargs.setdefault("pad_token_id", self.tokenizer.pad_token_id)
        gen_kwargs.setdefault("eos_token_id", self.tokenizer.eos_token_id)
        if "do_sample" not in gen_kwargs and "generation_config" not in gen_kwargs:
            gen_kwargs["do_sample"] = False
        if self.prompt_encoder is None:
            out = lm.generate(input_ids=input_ids, attention_mask=attention_mask, **gen_kwargs)
            return out[:, input_ids.shape[1] :]
        embeds, mask = self._embed(input_ids, attention_mask)  # (B, V+T, D)
        out = lm.generate(inputs_embeds=embeds, attention_mask=mask, **gen_kwargs)
        return out  # decoder-only generate from inputs_embeds returns only the new tokens

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_state(self) -> dict[str, dict[str, torch.Tensor]]:
        """What ``save_checkpoint`` writes, frozen in time: CPU copies of every trainable parameter
        and buffer (frozen parameters are shared, training never changes them; tied weights stay
        tied). A background thread can then write the checkpoint while training goes on."""
        state = {}
        if self.backbone_mode != "frozen":
            state["backbone"] = self.backbone.state_dict(keep_vars=True)
        if self.prompt_encoder is not None:
            state["prompt_encoder"] = self.prompt_encoder.state_dict(keep_vars=True)
        return snapshot_tensors(state)

    def save_checkpoint(
        self,
        path: str | Path,
        method: str,
        step: int,
        extra_state_dicts: dict[str, dict[str, torch.Tensor]] | None = None,
        state: dict[str, dict[str, torch.Tensor]] | None = None,
    ) -> Path:
        """Write a checkpoint directory atomically (temporary folder + rename); returns ``path``.

        Holds only what training changed: ``backbone/`` for full fine-tuning, ``lora/`` for LoRA,
        ``prompt_encoder.safetensors``, one ``{name}.safetensors`` per extra state dict (e.g.
        ``domain_classifier``), the tokenizer in ``tokenizer/`` and ``prada_checkpoint.json``.
        Frozen and LoRA checkpoints reference the base model by ``StudentConfig.model``.
        ``state``: a ``checkpoint_state()`` taken earlier, written instead of the live weights.
        """
        from safetensors.torch import save_file

        path = Path(path)
        backbone_state = state.get("backbone") if state is not None else None
        encoder_state = state.get("prompt_encoder") if state is not None else None
        with atomic_dir(path, fsync=False) as tmp:
            student_cfg = self.student_cfg
            local = Path(student_cfg.model).expanduser()
            if local.is_dir():  # keep the reference valid from any working directory
                student_cfg = dataclasses.replace(student_cfg, model=str(local.resolve()))
            if self.backbone_mode == "full":
                self.backbone.save_pretrained(tmp / "backbone", state_dict=backbone_state)
            elif self.backbone_mode == "lora":
                self.backbone.save_pretrained(tmp / "lora", state_dict=backbone_state)
            if self.prompt_encoder is not None:
                save_file(_contiguous(encoder_state if encoder_state is not None else self.prompt_encoder.state_dict()),
                          str(tmp / "prompt_encoder.safetensors"))
            extras = sorted(extra_state_dicts or {})
            for name in extras:
                if name in ("backbone", "lora", "prompt_encoder", "tokenizer") or not name.isidentifier():
                    raise ValueError(f"extra state dict name '{name}' is reserved or not an identifier")
                save_file(_contiguous((extra_state_dicts or {})[name]), str(tmp / f"{name}.safetensors"))
            self.tokenizer.save_pretrained(tmp / "tokenizer")
            meta = {
                "format": CHECKPOINT_FORMAT,
                "method": method,
                "backbone": self.backbone_mode,
                "step": int(step),
                "student": dataclasses.asdict(student_cfg),
                "prompt_encoder": (dataclasses.asdict(self.prompt_encoder_cfg)
                                   if self.prompt_encoder is not None and self.prompt_encoder_cfg is not None else None),
                "lora": dataclasses.asdict(self.lora_cfg) if self.lora_cfg is not None else None,
                "extra": extras,
            }
            write_json_atomic(tmp / CHECKPOINT_FILE, meta)
        return path

    @classmethod
    def from_checkpoint(cls, path: str | Path, *, trust_remote_code: bool = False) -> Student:
        """Rebuild a student from ``save_checkpoint``'s directory (trainable as when it was saved).

        The folder is untrusted input: ``trust_remote_code`` comes from the caller (the user's
        ``student.trust_remote_code``), never from the checkpoint's own files, and a damaged file is
        a ``CheckpointError`` naming it.
        """
        path = Path(path)
        spec = parse_checkpoint_meta(read_checkpoint_meta(path), path, trust_remote_code=trust_remote_code)
        try:
            return cls._load_checkpoint(path, spec)
        except PradaError as e:
            raise CheckpointError(f"{path}: cannot load this checkpoint: {e}") from None
        except Exception as e:  # noqa: BLE001 - a truncated safetensors file, a bad config.json, ...
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            raise CheckpointError(
                f"{path}: cannot load this checkpoint ({type(e).__name__}: {first}); a file in it is damaged "
                "or missing (an interrupted copy?). Copy it again, or delete it and re-run the command "
                "that wrote it"
            ) from None

    @classmethod
    def _load_checkpoint(cls, path: Path, spec: CheckpointSpec) -> Student:
        student_cfg, backbone = spec.student, spec.backbone
        tokenizer = load_tokenizer(str(path / "tokenizer"), trust_remote_code=student_cfg.trust_remote_code)
        if backbone == "full":
            model = load_causal_lm(str(path / "backbone"), student_cfg)
        else:
            model, _ = load_base_model(student_cfg)
        already = False
        if backbone == "lora":
            from peft import PeftModel

            for p in model.parameters():
                p.requires_grad_(False)
            model = PeftModel.from_pretrained(model, str(path / "lora"), is_trainable=True)
            already = True
        student = cls(model, tokenizer, student_cfg, backbone, spec.prompt_encoder, spec.lora,
                      _lora_already_applied=already)
        if student.prompt_encoder is not None:
            state = load_extra_state(path, "prompt_encoder")
            student.prompt_encoder.load_state_dict(state)
        return student.eval()


def snapshot_tensors(tree: Any) -> Any:
    """A copy of nested dicts/lists/tuples of tensors that later in-place updates cannot reach:
    tensors are copied to the CPU, except frozen parameters (``requires_grad=False``), which are
    shared. Views of one storage stay views of one copy, so tied weights stay tied."""
    copies: dict[tuple, torch.Tensor] = {}

    def copy(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: copy(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return type(x)(copy(v) for v in x)
        if not isinstance(x, torch.Tensor):
            return x
        if isinstance(x, nn.Parameter) and not x.requires_grad:
            return x.detach()
        key = (x.device, x.data_ptr(), x.dtype, tuple(x.shape), x.stride())
        if key not in copies:
            copies[key] = x.detach().to("cpu", copy=True)
        return copies[key]

    return copy(tree)


def _contiguous(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous().cpu() for k, v in state.items()}


def is_checkpoint(path: str | Path) -> bool:
    """True when ``path`` is a directory written by ``Student.save_checkpoint``."""
    return (Path(path) / CHECKPOINT_FILE).is_file()


def read_checkpoint_meta(path: str | Path) -> dict[str, Any]:
    """``prada_checkpoint.json`` of a checkpoint (method, backbone, step, configs, extras), unchecked
    beyond its format (``Student.from_checkpoint`` checks every field)."""
    path = Path(path)
    if not is_checkpoint(path):
        raise EvaluationError(f"{path}: not a prada checkpoint (no {CHECKPOINT_FILE})")
    try:
        meta = read_json(path / CHECKPOINT_FILE)
    except DataError as e:
        raise CheckpointError(f"{e}; the checkpoint is damaged: copy it again, or delete it and re-run the "
                              "command that wrote it") from None
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise EvaluationError(f"{path}: checkpoint format {found!r}, expected {CHECKPOINT_FORMAT}")
    return meta


def load_extra_state(path: str | Path, name: str) -> dict[str, torch.Tensor]:
    """A state dict saved beside the student, e.g. ``load_extra_state(ckpt, "domain_classifier")``."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    file = Path(path) / f"{name}.safetensors"
    if not file.is_file():
        raise EvaluationError(f"{path}: the checkpoint has no {file.name}")
    try:
        return load_file(str(file))
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{file}: cannot read it ({e}); the file is damaged: copy the checkpoint again, "
                              "or delete it and re-run the command that wrote it") from None


def load_student(model_ref: str | Path, student_cfg: StudentConfig | None = None) -> Student:
    """A checkpoint directory -> ``Student.from_checkpoint``; anything else (alias, folder, hub id)
    -> the plain model with a frozen backbone and no adapters (``student_cfg`` gives dtype etc.).

    ``trust_remote_code`` is ``student_cfg``'s (the caller's), also for a checkpoint."""
    trust = bool(student_cfg.trust_remote_code) if student_cfg is not None else False
    if is_checkpoint(model_ref):
        return Student.from_checkpoint(model_ref, trust_remote_code=trust)
    cfg = dataclasses.replace(student_cfg or StudentConfig(), model=str(model_ref))
    return Student.build(cfg, backbone="frozen").eval()


def build_student(cfg: RunConfig, *, prompt_encoder: bool) -> Student:
    """A fresh student from a ``RunConfig``: ``cfg.train.backbone``, a P-Tuning prompt encoder
    (``cfg.prompt_encoder``) when ``prompt_encoder``, LoRA settings for ``lora``. Seed torch first.

    The student knows feature flags, not method names: training passes
    ``method_spec(method).prompt_encoder``."""
    return Student.build(
        cfg.student,
        cfg.train.backbone,
        cfg.prompt_encoder if prompt_encoder else None,
        cfg.lora if cfg.train.backbone == "lora" else None,
    )
