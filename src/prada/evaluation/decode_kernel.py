"""A fused C++ kernel for the attention of a bf16 decoding step on CPU (``eval.decode_attention``).

A decoding step's attention reads every cached key and value of every row once, for one query
per head, so it is bound by how fast the cache is read. PyTorch's CPU SDPA reads it at
7.5–9.5 GB/s on the 2-core AMX machines (single-query rows, grouped heads), ~30 % of a step at
batch 128; ``csrc/decode_attention.cpp`` reads it at ~30–37 GB/s (30 layers' caches of 128 rows,
96–250 positions, ``benchmarks/README.md``): one task per (row, key/value head) scores the
head's grouped queries together with AVX512-BF16 dot products, skips the row's left padding,
keeps the softmax and the weighted sum of values in fp32, and prefetches its values and the
next task's keys while it works. Without AVX512-BF16 the same
arithmetic compiles as plain loops, which are tested but not used: there SDPA is faster.

The kernel is compiled on first use with the machine's C++ compiler (``torch.utils.cpp_extension``,
~20 s, cached in torch's extension folder per source and CPU — the user's own cache, as
``torch.compile``'s — and loaded from there afterwards). Where it cannot be built (no compiler)
decoding uses SDPA, with one warning.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import platform
from pathlib import Path
from types import ModuleType

import torch

logger = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("csrc") / "decode_attention.cpp"

VECTOR_HEAD_DIMS = (32, 64, 96, 128)
"""Head dimensions the kernel's vector path is compiled for (others would take its plain loops)."""
MAX_GROUPED_QUERIES = 16
"""Query heads per key/value head the kernel takes."""


def supports(grouped_queries: int, head_dim: int) -> bool:
    """Whether the kernel's vector path takes heads of this shape (else the caller uses SDPA)."""
    return grouped_queries <= MAX_GROUPED_QUERIES and head_dim in VECTOR_HEAD_DIMS


def _cpu_tag() -> str:
    """Tells CPUs apart: the build uses ``-march=native``, so a cache folder shared by different
    machines must not hand one's build to another."""
    flags = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = line
                break
    except OSError:
        pass
    return hashlib.sha256(f"{platform.machine()} {flags}".encode()).hexdigest()[:10]


@functools.cache
def load_kernel() -> ModuleType | None:
    """The compiled extension (built on the first call in a machine's life), or None where it
    cannot be built or this CPU lacks AVX512-BF16; the reason is logged once."""
    from torch.utils.cpp_extension import load

    logger.info("loading the decoding attention kernel (the first time on a machine compiles it, ~20 s)")
    try:
        kernel = load(name=f"prada_decode_attention_{_cpu_tag()}", sources=[str(SOURCE)],
                      extra_cflags=["-O3", "-march=native", "-fopenmp"], extra_ldflags=["-fopenmp"], verbose=False)
    except Exception as exc:  # no compiler, no headers, a failed build: SDPA does the same work
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        logger.warning("the decoding attention kernel could not be built (%s); decoding uses SDPA", reason[:300])
        return None
    if not kernel.vectorized():
        logger.info("this CPU has no AVX512-BF16: decoding uses SDPA, faster here than the kernel's plain loops")
        return None
    return kernel


def decode_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor,
                     scale: float) -> torch.Tensor:
    """``softmax(q kᵀ · scale, masked) v`` for one query per head.

    query (B, Hk, G, D): the G query heads that share each of Hk key/value heads; key, value
    (B, Hk, S, D) bf16 with contiguous rows (views of a larger cache are read in place); mask
    (B, S) bool, True where a row attends. Returns (B, Hk, G, D) bf16. A row that attends to no
    position gets zeros. Raises RuntimeError when the kernel is not available.
    """
    kernel = load_kernel()
    if kernel is None:
        raise RuntimeError("the decoding attention kernel is not available (see the warning above)")
    return kernel.decode_attention(query, key, value, mask, float(scale))
