"""What this machine computes fast, and the settings built on it: ``auto`` precisions and the
memory allocator.

bf16 pays off where the hardware multiplies bf16 natively: CPUs with AMX-BF16 or AVX512-BF16
(a bf16 matmul runs ~7x faster than fp32 on the 2-core AMX machines this project runs on), and
CUDA GPUs that support bf16 (Ampere and newer). Elsewhere bf16 is emulated and slower than fp32,
so ``auto`` means fp32 there.

- ``train.mixed_precision: auto`` -> ``bf16`` or ``no`` (see ``resolve_mixed_precision``);
- ``eval.dtype: auto`` -> ``bfloat16`` or ``float32`` (see ``resolve_eval_dtype``).

``tune_allocator()`` keeps freed memory inside the process (glibc): a CPU training step allocates
and frees gigabytes of activations, and returning them to the kernel each time costs a page fault
per 4 KiB on the next step (~1 M faults, ~1.5 s of system time per SmolLM2 step measured here).

>>> resolve_mixed_precision("no", "cpu")
'no'
>>> resolve_eval_dtype("float32", "cpu")
'float32'
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import torch

from prada.errors import ConfigError

logger = logging.getLogger(__name__)

MIXED_PRECISIONS = ("auto", "no", "bf16", "fp16")
EVAL_DTYPES = ("auto", "float32", "bfloat16", "float16")
TORCH_DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True when the CPU multiplies bf16 natively (AMX-BF16 or AVX512-BF16)."""
    probes = [getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    callables = [p for p in probes if callable(p)]
    if len(callables) == len(probes):
        return any(bool(p()) for p in callables)
    try:  # older torch: read the kernel's view of the CPU flags
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def bf16_is_fast(device: str | torch.device) -> bool:
    """Whether bf16 arithmetic is native (fast) on ``device``."""
    kind = torch.device(device).type
    if kind == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if kind == "cpu":
        return cpu_has_native_bf16()
    return False


def resolve_mixed_precision(requested: str, device: str | torch.device) -> str:
    """``auto`` -> ``bf16`` where bf16 is native on ``device``, else ``no``; other values unchanged."""
    if requested not in MIXED_PRECISIONS:
        raise ConfigError(f"train.mixed_precision '{requested}': valid values are {list(MIXED_PRECISIONS)}")
    if requested != "auto":
        return requested
    return "bf16" if bf16_is_fast(device) else "no"


def resolve_eval_dtype(requested: str, device: str | torch.device) -> str:
    """``auto`` -> ``bfloat16`` where bf16 is native on ``device``, else ``float32``."""
    if requested not in EVAL_DTYPES:
        raise ConfigError(f"eval.dtype '{requested}': valid values are {list(EVAL_DTYPES)}")
    if requested != "auto":
        return requested
    return "bfloat16" if bf16_is_fast(device) else "float32"


def describe(device: str | torch.device) -> str:
    """One line for logs: the device and whether bf16 is native there."""
    kind = torch.device(device).type
    if kind == "cpu":
        return f"cpu ({'AMX/AVX512-BF16: bf16 native' if cpu_has_native_bf16() else 'no native bf16'})"
    if kind == "cuda" and torch.cuda.is_available():
        name = torch.cuda.get_device_name(torch.device(device))
        return f"{device} {name} ({'bf16 native' if bf16_is_fast(device) else 'no native bf16'})"
    return str(device)


_MALLOPT = {"M_TRIM_THRESHOLD": -1, "M_TOP_PAD": -2, "M_MMAP_MAX": -4}
ALLOCATOR_SETTINGS = {"M_MMAP_MAX": 0, "M_TRIM_THRESHOLD": 64 << 30, "M_TOP_PAD": 1 << 30}
"""Every block from the heap (no mmap, whose pages are faulted in afresh at each allocation of
a large tensor: logits chunks, embedding gradients), and the heap never trimmed back."""


@functools.cache
def tune_allocator() -> bool:
    """Apply ``ALLOCATOR_SETTINGS`` through glibc's ``mallopt`` once per process; True if applied.

    A no-op (False) off Linux/glibc, or when ``$PRADA_MALLOC_TUNING`` is ``0``. The process then
    keeps its peak memory for reuse instead of handing it back between steps.
    """
    if os.environ.get("PRADA_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl or another libc
        return False
    applied = all(mallopt(_MALLOPT[name], value) == 1 for name, value in ALLOCATOR_SETTINGS.items())
    logger.debug("malloc tuning %s", "applied" if applied else "refused by the C library")
    return applied


def available_memory_bytes() -> int | None:
    """The memory the kernel could give this process now (``MemAvailable`` of ``/proc/meminfo``),
    or None where that is not known (not Linux)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


COMPILE_MODES = ("auto", "yes", "no")


def resolve_compile(requested: str, precision: str, device: str | torch.device) -> bool:
    """Whether to ``torch.compile`` the student's layers (``train.compile``): ``auto`` compiles
    the bf16 path on CPU when a C++ compiler is present (what inductor generates its CPU kernels
    with); ``yes`` always, ``no`` never.

    >>> resolve_compile("no", "bf16", "cpu"), resolve_compile("auto", "no", "cpu")
    (False, False)
    """
    if requested not in COMPILE_MODES:
        raise ConfigError(f"train.compile '{requested}': valid values are {list(COMPILE_MODES)}")
    if requested != "auto":
        return requested == "yes"
    return precision == "bf16" and torch.device(device).type == "cpu" and has_cxx_compiler()


ATTENTION_MODES = ("auto", "model", "sdpa_recompute")


def resolve_attention(requested: str, compiled: bool, precision: str, device: str | torch.device) -> str:
    """The student's training attention (``train.attention``): ``auto`` is ``sdpa_recompute``
    on the compiled bf16 CPU path (where inductor fuses its backward), ``model`` elsewhere.

    >>> resolve_attention("auto", True, "bf16", "cpu"), resolve_attention("auto", False, "no", "cpu")
    ('sdpa_recompute', 'model')
    """
    if requested not in ATTENTION_MODES:
        raise ConfigError(f"train.attention '{requested}': valid values are {list(ATTENTION_MODES)}")
    if requested != "auto":
        return requested
    fast_cpu = compiled and precision == "bf16" and torch.device(device).type == "cpu"
    return "sdpa_recompute" if fast_cpu else "model"


def has_cxx_compiler() -> bool:
    """A C++ compiler on the PATH (``$CXX``, ``g++``, ``c++`` or ``clang++``)."""
    return any(shutil.which(name) for name in (os.environ.get("CXX", ""), "g++", "c++", "clang++") if name)


def require_vllm(setting: str, fallback: str, error: type[Exception]) -> Any:
    """The ``vllm`` module when it is installed and a CUDA GPU is visible; otherwise ``error``
    saying which is missing, naming the ``setting`` that asked for vLLM and the ``fallback`` to use
    (the one availability check of the teacher's and evaluation's vLLM backends).

    >>> require_vllm("eval.backend=vllm", "eval.backend=hf", RuntimeError)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    RuntimeError: eval.backend=vllm needs the 'vllm' package, which is not installed ...
    """
    try:
        import vllm
    except ImportError:
        raise error(f"{setting} needs the 'vllm' package, which is not installed (pip install 'prada[vllm]' on "
                    f"a machine with a CUDA GPU); use {fallback} otherwise") from None
    import torch

    if not torch.cuda.is_available():
        raise error(f"{setting} needs a CUDA GPU and none is visible; use {fallback}")
    return vllm
