"""The student stage: load a causal LM, format Fine-tune-CoT examples, wrap it with LoRA / a P-Tuning
prompt encoder, save and load checkpoints. See docs/student.md."""

from prada.student.format import (
    IGNORE_INDEX,
    EncodedExample,
    collate_prompts,
    collate_questions,
    collate_train,
    encode_questions,
    encode_train,
    format_prompt,
    format_target,
)
from prada.student.model import ALIASES, SMOLLM2_ALIAS, ensure_alias_converted, load_base_model, model_cache_dir
from prada.student.student import (
    Student,
    StudentOutput,
    build_student,
    is_checkpoint,
    load_extra_state,
    load_student,
    pool_features,
    read_checkpoint_meta,
)

__all__ = [
    "ALIASES",
    "IGNORE_INDEX",
    "SMOLLM2_ALIAS",
    "EncodedExample",
    "Student",
    "StudentOutput",
    "build_student",
    "collate_prompts",
    "collate_questions",
    "collate_train",
    "encode_questions",
    "encode_train",
    "ensure_alias_converted",
    "format_prompt",
    "format_target",
    "is_checkpoint",
    "load_base_model",
    "load_extra_state",
    "load_student",
    "model_cache_dir",
    "pool_features",
    "read_checkpoint_meta",
]
