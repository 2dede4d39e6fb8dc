"""Deterministic, resumable, shardable batch streams.

A stream is the endless concatenation of seeded permutations of ``range(n)`` — epoch ``e`` uses
``randperm(n, generator=seed(stream_seed, e))`` — cut into consecutive *global* batches of
``batch_size × num_processes`` indices; process ``r`` takes the ``r``-th slice. A batch never runs
short (the last batch of an epoch continues into the next permutation), and the whole position is
one integer, ``consumed`` (indices handed out so far), so a resumed run continues exactly where
the checkpoint left it, whatever the number of processes.

>>> s = IndexStream(5, batch_size=2, seed=0)
>>> [s.next_batch() for _ in range(3)]
[[4, 0], [1, 3], [2, 0]]
>>> s.state_dict()["epoch"], s.state_dict()["consumed"]
(1, 6)
"""

from __future__ import annotations

from typing import Any

import torch


def _permutation(n: int, seed: int, epoch: int) -> list[int]:
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g).tolist()


class IndexStream:
    """Endless stream of index batches over ``n`` items (see module docstring)."""

    def __init__(
        self, n: int, batch_size: int, seed: int, *, num_processes: int = 1, process_index: int = 0
    ) -> None:
        if n < 1:
            raise ValueError("an IndexStream needs at least one item")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.num_processes, self.process_index = num_processes, process_index
        self.consumed = 0
        self._epoch, self._perm = 0, _permutation(n, seed, 0)

    def _take(self, count: int) -> list[int]:
        out = []
        for pos in range(self.consumed, self.consumed + count):
            epoch, i = divmod(pos, self.n)
            if epoch != self._epoch:
                self._epoch, self._perm = epoch, _permutation(self.n, self.seed, epoch)
            out.append(self._perm[i])
        self.consumed += count
        return out

    def next_batch(self, size: int | None = None) -> list[int]:
        """This process's slice of the next global batch (``size`` per process, default
        ``batch_size``; 0 gives an empty batch and does not advance)."""
        size = self.batch_size if size is None else size
        global_batch = self._take(size * self.num_processes)
        start = self.process_index * size
        return global_batch[start : start + size]

    def peek_batch(self) -> list[int]:
        """The batch ``next_batch`` would return, without advancing."""
        consumed, epoch, perm = self.consumed, self._epoch, self._perm
        batch = self.next_batch()
        self.consumed, self._epoch, self._perm = consumed, epoch, perm
        return batch

    # -- resumable position ------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        epoch, index = divmod(self.consumed, self.n)
        return {
            "n": self.n,
            "seed": self.seed,
            "consumed": self.consumed,
            "epoch": epoch,
            "index_in_epoch": index,
            "permutation": _permutation(self.n, self.seed, epoch),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["n"] != self.n or state["seed"] != self.seed:
            raise ValueError(
                f"checkpointed stream has n={state['n']}, seed={state['seed']}; this run has "
                f"n={self.n}, seed={self.seed} (the data changed since the checkpoint)"
            )
        self.consumed = int(state["consumed"])
        self._epoch = self.consumed // self.n
        self._perm = _permutation(self.n, self.seed, self._epoch)
        if self._perm != list(state["permutation"]):
            raise ValueError("checkpointed permutation differs from the recomputed one")


def rotating_shares(total: int, parts: int, turn: int) -> list[int]:
    """``total`` items over ``parts``: ``total // parts`` each, the remainder going to the next
    ``total % parts`` parts in rotation (``turn`` counts the draws), so over ``parts`` turns every
    part gets the same number. A part may get 0 when ``total < parts``.

    >>> [rotating_shares(8, 3, t) for t in range(3)]
    [[3, 3, 2], [3, 2, 3], [2, 3, 3]]
    >>> [rotating_shares(2, 3, t) for t in range(3)]
    [[1, 1, 0], [1, 0, 1], [0, 1, 1]]
    """
    base, rem = divmod(total, parts)
    extra = {(turn * rem + i) % parts for i in range(rem)}
    return [base + (1 if k in extra else 0) for k in range(parts)]
