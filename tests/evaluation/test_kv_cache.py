from __future__ import annotations

import pytest
import torch

from prada.evaluation.kv_cache import AppendOnlyCache


def _filled(rows: int, length: int, offset: float, capacity: int = 8) -> tuple[AppendOnlyCache, torch.Tensor]:
    """A one-layer cache whose (rows, 1 head, length, 2) keys are ``offset + arange`` (values: negated)."""
    cache = AppendOnlyCache(capacity)
    keys = offset + torch.arange(rows * length * 2, dtype=torch.float32).reshape(rows, 1, length, 2)
    cache.update(keys, -keys, 0)
    return cache, keys


def test_appends_in_place_and_keeps_rows_without_leading_columns() -> None:
    cache, keys = _filled(3, 4, 0.0)
    step = torch.full((3, 1, 1, 2), 7.0)
    k, v = cache.update(step, -step, 0)
    assert k.shape == (3, 1, 5, 2) and torch.equal(k[..., :4, :], keys) and torch.equal(v[..., 4:, :], -step)
    cache.keep_rows(torch.tensor([2, 0]), drop_leading=1)
    layer = cache.layers[0]
    assert cache.get_seq_length() == 4
    assert torch.equal(layer.keys[0, ..., :3, :], keys[2, ..., 1:, :]) and torch.equal(layer.keys[1, ..., 3, :], step[0, ..., 0, :])
    assert torch.equal(layer.values, -layer.keys)


def test_append_rows_right_aligns_and_pads_with_zeros() -> None:
    old, old_keys = _filled(2, 5, 0.0)
    new, new_keys = _filled(1, 3, 100.0)
    old.append_rows([new], pad_self=0, pad_others=[2])
    keys = old.layers[0].keys  # (3, 1, 5, 2)
    assert keys.shape == (3, 1, 5, 2) and old.get_seq_length() == 5
    assert torch.equal(keys[:2], old_keys)
    assert torch.equal(keys[2, ..., :2, :], torch.zeros(1, 2, 2)) and torch.equal(keys[2, ..., 2:, :], new_keys[0])
    # The next token is written after the common end, for every row.
    k, _ = old.update(torch.ones(3, 1, 1, 2), -torch.ones(3, 1, 1, 2), 0)
    assert k.shape == (3, 1, 6, 2) and torch.equal(k[:, :, 5], torch.ones(3, 1, 2))
    # A longer newcomer left-pads the rows already there.
    longer, longer_keys = _filled(1, 8, 50.0)
    old.append_rows([longer], pad_self=2, pad_others=[0])
    keys = old.layers[0].keys
    assert keys.shape == (4, 1, 8, 2) and torch.equal(keys[3], longer_keys[0])
    assert torch.equal(keys[:3, ..., :2, :], torch.zeros(3, 1, 2, 2)) and torch.equal(keys[:2, ..., 2:7, :], old_keys)
    with pytest.raises(ValueError, match="same position"):
        old.append_rows([new], pad_self=0, pad_others=[0])


def test_append_rows_takes_several_caches_in_one_copy() -> None:
    base, base_keys = _filled(1, 4, 0.0)
    a, a_keys = _filled(2, 2, 10.0)
    b, b_keys = _filled(1, 3, 20.0)
    base.append_rows([a, b], pad_self=0, pad_others=[2, 1])
    keys = base.layers[0].keys  # (4, 1, 4, 2): base, a's two rows, b
    assert keys.shape == (4, 1, 4, 2)
    assert torch.equal(keys[0], base_keys[0]) and torch.equal(keys[1:3, ..., 2:, :], a_keys)
    assert torch.equal(keys[3, ..., 1:, :], b_keys[0]) and not keys[1:3, ..., :2, :].any() and not keys[3, ..., 0, :].any()
