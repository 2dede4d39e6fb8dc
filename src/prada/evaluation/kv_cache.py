"""A KV cache that appends in place: one buffer per layer, sized once for prompt + new tokens.

transformers' ``DynamicLayer`` grows its keys/values with ``torch.cat`` at every decoding step,
which copies the whole cache of every layer once per generated token: at batch 128 and 250
positions that is ~0.7 GB of memory traffic per step on SmolLM2, more than the step's matmuls
need on a 2-core CPU. Here each layer writes the new positions into a preallocated buffer and
returns views of the filled part, so a step copies only the new token's keys and values.

For continuous batching (``prada.evaluation.generate``) an ``AppendOnlyCache`` also takes rows
out (``keep_rows``, dropping leading columns no remaining row attends to) and takes new rows in
(``append_rows``: another cache's rows, right-aligned with its own by left padding), so finished
rows can be replaced by new prompts while the others go on decoding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from transformers.cache_utils import Cache, DynamicCache, DynamicLayer


class AppendOnlyLayer(DynamicLayer):
    """``DynamicLayer`` semantics over a preallocated ``(B, H, capacity, D)`` buffer."""

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity
        self._length = 0
        self._key_buffer: torch.Tensor | None = None
        self._value_buffer: torch.Tensor | None = None

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        self.device = key_states.device
        capacity = max(self.capacity, key_states.shape[-2])
        self._key_buffer = key_states.new_empty((*key_states.shape[:-2], capacity, key_states.shape[-1]))
        self._value_buffer = value_states.new_empty((*value_states.shape[:-2], capacity, value_states.shape[-1]))
        self._length = 0
        self.is_initialized = True

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        assert self._key_buffer is not None and self._value_buffer is not None
        end = self._length + key_states.shape[-2]
        if end > self._key_buffer.shape[-2]:  # past the planned size: grow by doubling (rare)
            self._key_buffer = _grown(self._key_buffer, self._length, end)
            self._value_buffer = _grown(self._value_buffer, self._length, end)
        self._key_buffer[..., self._length:end, :] = key_states
        self._value_buffer[..., self._length:end, :] = value_states
        self._set_length(end)
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self._length if self.is_initialized else 0

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self.keep_rows(indices)

    def keep_rows(self, indices: torch.Tensor, drop_leading: int = 0) -> None:
        """Keep the rows ``indices`` (in that order) without their first ``drop_leading`` positions."""
        if not self.is_initialized:
            return
        assert self._key_buffer is not None and self._value_buffer is not None
        # Only the filled part moves; the room left for the coming tokens is kept.
        self._key_buffer = _selected(self._key_buffer, indices, drop_leading, self._length)
        self._value_buffer = _selected(self._value_buffer, indices, drop_leading, self._length)
        self._set_length(self._length - drop_leading)

    def append_rows(self, others: Sequence[AppendOnlyLayer], pad_self: int, pad_others: Sequence[int]) -> None:
        """Put the rows of ``others`` after this layer's (in order), each part left-padded with
        zeros by its pad so all end at the same position (``length + pad`` equal for every part).
        One copy of everything, however many parts."""
        parts = [(layer, pad) for layer, pad in zip(others, pad_others, strict=True) if layer.is_initialized]
        if not parts:
            return
        if not self.is_initialized:
            first = parts[0][0]
            assert first._key_buffer is not None and first._value_buffer is not None
            self.lazy_initialization(first._key_buffer[:0], first._value_buffer[:0])
        parts = [(self, pad_self), *parts]
        length = self._length + pad_self
        if any(layer._length + pad != length for layer, pad in parts):
            raise ValueError("append_rows: the caches would not end at the same position")
        room = max(layer._capacity() - layer._length for layer, _ in parts)
        self._key_buffer = _stacked([(layer._key_buffer, layer._length, pad) for layer, pad in parts], length + room)
        self._value_buffer = _stacked([(layer._value_buffer, layer._length, pad) for layer, pad in parts], length + room)
        self._set_length(length)

    def _capacity(self) -> int:
        assert self._key_buffer is not None
        return self._key_buffer.shape[-2]

    def _set_length(self, length: int) -> None:
        assert self._key_buffer is not None and self._value_buffer is not None
        self._length = length
        self.keys = self._key_buffer[..., :length, :]  # (B, H, L, D) views, no copy
        self.values = self._value_buffer[..., :length, :]

    def reset(self) -> None:
        self._length = 0
        self._key_buffer = self._value_buffer = None
        super().reset()


def _grown(buffer: torch.Tensor, length: int, needed: int) -> torch.Tensor:
    bigger = buffer.new_empty((*buffer.shape[:-2], max(needed, 2 * buffer.shape[-2]), buffer.shape[-1]))
    bigger[..., :length, :] = buffer[..., :length, :]
    return bigger


def _selected(buffer: torch.Tensor, rows: torch.Tensor, start: int, end: int) -> torch.Tensor:
    out = buffer.new_empty((len(rows), *buffer.shape[1:]))
    out[..., : end - start, :] = buffer[rows, ..., start:end, :]
    return out


def _stacked(parts: Sequence[tuple[torch.Tensor | None, int, int]], capacity: int) -> torch.Tensor:
    """The rows of every ``(buffer, filled length, left pad)`` part, one after the other, their
    filled parts right-aligned; the padding is zeros (it is masked out, and a zero, unlike
    uninitialised memory, cannot turn a masked product into NaN)."""
    first = parts[0][0]
    assert first is not None
    rows = sum(buffer.shape[0] for buffer, _, _ in parts if buffer is not None)
    out = first.new_empty((rows, *first.shape[1:-2], capacity, first.shape[-1]))
    start = 0
    for buffer, length, pad in parts:
        assert buffer is not None
        end = start + buffer.shape[0]
        out[start:end, ..., :pad, :] = 0
        out[start:end, ..., pad: pad + length, :] = buffer[..., :length, :]
        start = end
    return out


class _Replicate:
    """A zero-argument factory of ``AppendOnlyLayer(capacity)`` (what ``Cache`` calls per layer)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity

    def __call__(self) -> AppendOnlyLayer:
        return AppendOnlyLayer(self.capacity)


def decoder_text_config(config: Any) -> Any:
    """The text decoder's config of a model config (itself for a text-only model)."""
    get_text = getattr(config, "get_text_config", None)
    return get_text(decoder=True) if callable(get_text) else config


def _all_layers_full_attention(config: Any) -> bool:
    text = decoder_text_config(config)
    if getattr(text, "sliding_window", None) and getattr(text, "use_sliding_window", True):
        return False
    layer_types = getattr(text, "layer_types", None)
    return layer_types is None or all(t == "full_attention" for t in layer_types)


class AppendOnlyCache(Cache):
    """A ``Cache`` of ``AppendOnlyLayer``s (created on the first update), with row operations."""

    def __init__(self, capacity: int) -> None:
        super().__init__(layer_class_to_replicate=_Replicate(capacity))  # type: ignore[arg-type]

    def keep_rows(self, indices: torch.Tensor, drop_leading: int = 0) -> None:
        """Keep rows ``indices`` (in that order), without their first ``drop_leading`` positions."""
        for layer in self.layers:
            assert isinstance(layer, AppendOnlyLayer)
            layer.keep_rows(indices, drop_leading)

    def append_rows(self, others: Sequence[AppendOnlyCache], pad_self: int, pad_others: Sequence[int]) -> None:
        """Append the rows of ``others`` after these, right-aligned (``AppendOnlyLayer.append_rows``)."""
        assert self.layer_class_to_replicate is not None
        while len(self.layers) < max((len(o.layers) for o in others), default=0):
            self.layers.append(self.layer_class_to_replicate())
        for i, mine in enumerate(self.layers):
            theirs = [o.layers[i] for o in others if i < len(o.layers)]
            pads = [pad for o, pad in zip(others, pad_others, strict=True) if i < len(o.layers)]
            assert isinstance(mine, AppendOnlyLayer) and all(isinstance(t, AppendOnlyLayer) for t in theirs)
            mine.append_rows(theirs, pad_self, pads)  # type: ignore[arg-type]


def make_decoding_cache(model: Any, capacity: int) -> Cache:
    """An ``AppendOnlyCache`` for ``capacity`` positions when every layer is full attention; else
    (sliding windows, hybrid or recurrent layers) transformers' own ``DynamicCache``, which
    cannot take new rows in (the decoder then decodes one batch at a time)."""
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "to_dict") and not _all_layers_full_attention(config):
        return DynamicCache(config=config)
    return AppendOnlyCache(capacity)
