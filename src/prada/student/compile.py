"""Compiler back ends for the student's layers (``Student.compile_layers``).

``torch.compile``'s default back end (inductor) partitions each layer's forward and backward so
that the backward is fastest, saving whatever activations that needs. Its partitioner can instead
keep the saved activations within a fraction of that memory, recomputing the cheapest ones in the
backward (``torch._functorch.config.activation_memory_budget``). That setting is process-global
and read while a graph is compiled, so the back end below applies it around each compilation
only: other compiled code in the process keeps its own.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any


@functools.cache  # one object per budget: dynamo reuses a graph only for the same back end
def inductor_with_memory_budget(budget: float) -> Callable[..., Any]:
    """Inductor, with the activation memory of the graphs it compiles budgeted to ``budget``
    (0 < budget ≤ 1) of what its fastest plan saves.

    >>> inductor_with_memory_budget(0.5) is inductor_with_memory_budget(0.5)
    True
    """
    if not 0.0 < budget <= 1.0:
        raise ValueError(f"activation memory budget {budget} must be in (0, 1]")

    def backend(graph: Any, example_inputs: Any) -> Any:
        import torch._functorch.config as functorch_config
        from torch._inductor.compile_fx import compile_fx

        with functorch_config.patch(activation_memory_budget=budget):
            return compile_fx(graph, example_inputs)

    backend.__name__ = f"inductor_memory_budget_{budget:g}"
    return backend
