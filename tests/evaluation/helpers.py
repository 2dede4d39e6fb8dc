"""Helpers of the evaluation tests: a scripted ("Markov") LM whose outputs are known in advance, a
hand-made task and a config factory. Tests import them (``from .helpers import ...``); fixtures are
in ``conftest.py``."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn

from prada.config import EvalConfig, RunConfig, StudentConfig
from prada.data.example import AnswerType, Category, Example


class MarkovLM(nn.Module):
    """A 'language model' whose next token is ``table[current token]``: outputs are scripted.

    Works with the KV-cache loop (it ignores the cache) and with row compaction (it depends on the
    current token only)."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        v = len(table)
        self.emb = nn.Embedding(v, v)
        self.emb.weight.data = torch.eye(v)
        self.register_buffer("table", table)
        self.config = SimpleNamespace()
        self.generation_config = None
        self.calls: list[int] = []  # batch size of every forward call

    def get_input_embeddings(self) -> nn.Embedding:
        return self.emb

    def forward(self, input_ids=None, inputs_embeds=None, attention_mask=None, position_ids=None,
                past_key_values=None, use_cache=True, logits_to_keep=None):
        last = input_ids[:, -1] if input_ids is not None else inputs_embeds[:, -1].argmax(-1)
        self.calls.append(int(last.shape[0]))
        logits = F.one_hot(self.table[last], len(self.table)).float()[:, None]  # (B, 1, V)
        return SimpleNamespace(logits=logits, past_key_values=past_key_values)


class FakeStudent(nn.Module):
    def __init__(self, lm: MarkovLM, tokenizer) -> None:
        super().__init__()
        self.causal_lm = lm
        self.tokenizer = tokenizer
        self.student_cfg = StudentConfig()
        self.num_virtual_tokens = 0

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")


def make_markov_student(tokenizer, chains: list[list[int]], loop_token: int) -> FakeStudent:
    """Each chain ``[a, b, c, ...]`` makes ``a -> b -> c ...``; every other token maps to ``loop_token``
    (which maps to itself), so a prompt ending in a chain's first token generates the rest."""
    v = len(tokenizer)
    table = torch.full((v,), loop_token, dtype=torch.long)
    for chain in chains:
        for a, b in zip(chain, chain[1:]):
            table[a] = b
    return FakeStudent(MarkovLM(table), tokenizer)


@dataclass
class HandTask:
    """A task built from a list of examples (what evaluation needs of ``prada.data.Task``)."""

    examples: list[Example]
    name: str = "hand"
    answer_type: AnswerType = AnswerType.NUMBER
    trigger: str = "Therefore, the answer (arabic numerals) is"
    category: Category = Category.ARITHMETIC
    choice_letters: str | None = None
    loads: list[str] = field(default_factory=list)

    def load(self, split: str = "test", data_dir=None) -> list[Example]:
        self.loads.append(split)
        return list(self.examples)


def hand_examples(n: int = 5) -> list[Example]:
    return [
        Example(f"hand/{i}", "hand", Category.ARITHMETIC, AnswerType.NUMBER,
                f"Tom has {i} apples and buys {i + 1} more. How many apples?", str(2 * i + 1))
        for i in range(n)
    ]


def eval_cfg(student: StudentConfig | None = None, **eval_kw) -> RunConfig:
    """A default ``RunConfig`` with these ``eval`` settings (and ``student``), built as given:
    like a config a caller constructs, not validated (some tests pass values validation refuses)."""
    return RunConfig(eval=EvalConfig(**eval_kw), student=student or StudentConfig())
