"""Reading a checkpoint's ``prada_checkpoint.json`` as untrusted input.

A checkpoint folder may come from anyone (a colleague's run folder, a download). Its metadata is
checked field by field before anything is built from it, and it never decides whether code may
run: ``trust_remote_code`` is taken from the caller's own config (``student.trust_remote_code``)
only, and a checkpoint whose tokenizer or model config asks for its own code (``auto_map``) is
refused unless the caller trusts remote code.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prada.config import BACKBONES, Backbone, LoraConfig, PromptEncoderConfig, StudentConfig, section_from_dict
from prada.errors import CheckpointError, ConfigError
from prada.methods import METHODS

_CODE_CONFIGS = ("tokenizer/tokenizer_config.json", "tokenizer/config.json", "backbone/config.json",
                 "lora/adapter_config.json")
"""Files whose ``auto_map`` makes transformers import Python code from the checkpoint folder."""


@dataclass(frozen=True)
class CheckpointSpec:
    """What ``prada_checkpoint.json`` says, checked."""

    method: str
    backbone: Backbone
    step: int
    student: StudentConfig
    prompt_encoder: PromptEncoderConfig | None
    lora: LoraConfig | None


def parse_checkpoint_meta(meta: Any, path: Path, *, trust_remote_code: bool) -> CheckpointSpec:
    """Check ``meta`` (the parsed JSON of ``path/prada_checkpoint.json``) field by field.

    ``trust_remote_code`` replaces whatever the file says: the caller decides, never the file.
    """
    where = path / "prada_checkpoint.json"
    if not isinstance(meta, dict):
        raise CheckpointError(f"{where}: expected a JSON object, got {type(meta).__name__}")
    problems = []
    if meta.get("method") not in METHODS:
        problems.append(f"method {meta.get('method')!r} is not one of {list(METHODS)}")
    if meta.get("backbone") not in BACKBONES:
        problems.append(f"backbone {meta.get('backbone')!r} is not one of {list(BACKBONES)}")
    step = meta.get("step")
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        problems.append(f"step {step!r} is not a count of steps")
    sections: dict[str, Any] = {}
    for key, cls, optional in (("student", StudentConfig, False), ("prompt_encoder", PromptEncoderConfig, True),
                               ("lora", LoraConfig, True)):
        value = meta.get(key)
        if value is None and optional:
            sections[key] = None
            continue
        try:
            sections[key] = section_from_dict(cls, value, key)
        except ConfigError as e:
            problems.append(str(e))
    if not problems and meta["backbone"] == "lora" and sections["lora"] is None:
        problems.append("backbone 'lora' without a lora section")
    if problems:
        raise CheckpointError(f"{where}: not a usable prada checkpoint ({'; '.join(problems)}); it was "
                              "damaged or edited: use the run's other checkpoints or train it again")
    student = dataclasses.replace(sections["student"], trust_remote_code=trust_remote_code)
    if not trust_remote_code:
        refuse_remote_code(path)
    assert isinstance(step, int)  # checked above: a problem otherwise
    return CheckpointSpec(meta["method"], meta["backbone"], step, student, sections["prompt_encoder"],
                          sections["lora"])


def refuse_remote_code(path: Path) -> None:
    """Raise ``CheckpointError`` when a file of the checkpoint asks transformers to import Python
    code shipped in the folder (an ``auto_map`` entry)."""
    for rel in _CODE_CONFIGS:
        file = path / rel
        if not file.is_file():
            continue
        try:
            config = json.loads(file.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise CheckpointError(f"{file}: malformed JSON ({e}); the checkpoint is damaged") from None
        if isinstance(config, dict) and config.get("auto_map"):
            raise CheckpointError(
                f"{file}: refused: this checkpoint ships its own code (auto_map: {config['auto_map']}), and "
                "prada does not run code from a checkpoint. If you trust its author, set "
                "student.trust_remote_code: true in your own config (prada never takes it from the checkpoint)"
            )
