"""Resumable, shardable batch streams."""

from __future__ import annotations

import pytest

from prada.training.streams import IndexStream, rotating_shares


def test_stream_covers_each_epoch_once_and_crosses_epochs_without_short_batches():
    s = IndexStream(10, batch_size=4, seed=3)
    batches = [s.next_batch() for _ in range(5)]  # 20 indices = 2 epochs
    assert all(len(b) == 4 for b in batches)
    flat = [i for b in batches for i in b]
    assert sorted(flat[:10]) == list(range(10)) and sorted(flat[10:]) == list(range(10))
    assert flat[:10] != flat[10:]  # each epoch reshuffled


def test_stream_state_round_trip_continues_identically():
    a = IndexStream(7, batch_size=3, seed=1)
    for _ in range(4):
        a.next_batch()
    b = IndexStream(7, batch_size=3, seed=1)
    b.load_state_dict(a.state_dict())
    assert [a.next_batch() for _ in range(5)] == [b.next_batch() for _ in range(5)]
    state = a.state_dict()
    assert state["epoch"] == state["consumed"] // 7 and len(state["permutation"]) == 7


def test_stream_rejects_a_state_of_other_data():
    a = IndexStream(7, batch_size=3, seed=1)
    with pytest.raises(ValueError, match="data changed"):
        IndexStream(8, batch_size=3, seed=1).load_state_dict(a.state_dict())


def test_shards_partition_the_global_batch():
    single = IndexStream(9, batch_size=4, seed=0)
    shards = [IndexStream(9, batch_size=2, seed=0, num_processes=2, process_index=r) for r in range(2)]
    for _ in range(5):
        assert single.next_batch() == shards[0].next_batch() + shards[1].next_batch()
    assert single.peek_batch() == single.next_batch()


def test_rotating_shares_are_balanced_over_turns():
    for total, parts in [(8, 1), (8, 3), (10, 4), (2, 3), (4, 4)]:
        shares = [rotating_shares(total, parts, turn) for turn in range(parts)]
        assert all(sum(s) == total for s in shares)
        per_part = [sum(s[k] for s in shares) for k in range(parts)]
        assert len(set(per_part)) == 1, (total, parts, shares)  # every part gets the same over `parts` turns
