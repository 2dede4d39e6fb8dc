"""Fine-tune-CoT's student format, tokenisation and collation.

    prompt:              f"{question} ###"
    CoT target:          f" {rationale} --> {answer} END" + EOS
    answer-only target:  f" {answer} END" + EOS

The question, the prompt suffix (``" ###"``, or the chat template's pieces) and the target are
tokenised *separately* and concatenated, so ``question_mask`` marks exactly the question's own
tokens and the question's tokens are the same in training, in target-domain batches and in
generation prompts. Everything is tokenised once, in batch calls, into ``EncodedExample``s; the
collators only pad.

>>> from prada.student.tiny import build_tiny_tokenizer
>>> tok = build_tiny_tokenizer()
>>> [enc] = encode_train([{"id": "t/0", "question": "How many?", "rationale": "2 + 1 = 3.",
...                         "answer": "3"}], tok, StudentConfig())
>>> batch = collate_train([enc], pad_token_id=tok.pad_token_id)
>>> tok.decode(batch["input_ids"][0][batch["question_mask"][0].bool()])
'How many?'
>>> tok.decode(batch["input_ids"][0][batch["labels"][0] != -100])
' 2 + 1 = 3. --> 3 END</s>'
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from prada.config import StudentConfig
from prada.errors import ConfigError, DataError
from prada.formats import END_MARKER, PROMPT_SUFFIX, format_prompt, format_target  # noqa: F401 - re-exported

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100


@dataclass(frozen=True)
class EncodedExample:
    """One tokenised example: ``input_ids = prompt + target``.

    ``question_start:question_end`` is the question's own span; ``prompt_len`` tokens form the
    prompt (labels are −100 there), the rest is the target (empty for question-only examples).
    """

    id: str
    input_ids: tuple[int, ...]
    question_start: int
    question_end: int
    prompt_len: int
    truncated: bool = False

    @property
    def target_len(self) -> int:
        return len(self.input_ids) - self.prompt_len


def _field(item: Any, *names: str, default: Any = None) -> Any:
    for name in names:
        if isinstance(item, Mapping):
            if name in item and item[name] is not None:
                return item[name]
        elif getattr(item, name, None) is not None:
            return getattr(item, name)
    return default


def _item_id(item: Any, index: int) -> str:
    return str(_field(item, "example_id", "id", default=f"#{index}"))


def _special_prefix(tokenizer) -> list[int]:
    """The ids the tokenizer itself puts before any text (e.g. BOS for Llama-2); EOS never."""
    ids = list(tokenizer("", add_special_tokens=True)["input_ids"])
    while ids and ids[-1] == tokenizer.eos_token_id:
        ids.pop()
    return ids


class _PromptPieces:
    """How a question becomes a prompt: ``prefix + question + suffix`` (token ids)."""

    def __init__(self, tokenizer, cfg: StudentConfig) -> None:
        self.tokenizer = tokenizer
        self.chat = cfg.chat_template
        if not self.chat:
            self.prefix = _special_prefix(tokenizer)
            self.suffix = list(tokenizer(PROMPT_SUFFIX, add_special_tokens=False)["input_ids"])
            return
        if not getattr(tokenizer, "chat_template", None):
            raise ConfigError(
                "student.chat_template is true but the tokenizer has no chat template; "
                "set student.chat_template: false to use Fine-tune-CoT's 'question ###' format"
            )
        marker = "\x00QUESTION\x00"
        text = self._render(marker, None)
        if text.count(marker) != 1:
            raise ConfigError("student.chat_template: cannot locate the user message in the chat template")
        before, after = text.split(marker)
        self.prefix = list(tokenizer(before, add_special_tokens=False)["input_ids"])
        self.suffix = list(tokenizer(after, add_special_tokens=False)["input_ids"])

    def _render(self, question: str, target: str | None) -> str:
        messages = [{"role": "user", "content": question}]
        if target is None:
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        messages.append({"role": "assistant", "content": target})
        return self.tokenizer.apply_chat_template(messages, tokenize=False)

    def target_text(self, target: str) -> tuple[str, bool]:
        """The target's text and whether EOS must still be appended."""
        if not self.chat:
            return target, True
        marker = "\x00QUESTION\x00"
        prompt = self._render(marker, None)
        full = self._render(marker, target.strip())
        if not full.startswith(prompt):
            raise ConfigError("student.chat_template: the assistant turn does not extend the prompt")
        text = full[len(prompt):]
        eos = self.tokenizer.eos_token
        if eos and eos in text:  # e.g. "<|im_end|>" closes the turn: end the target there
            return text[: text.index(eos)], True
        return text, True


def _encode_questions(items: Sequence[Any], tokenizer, cfg: StudentConfig, pieces: _PromptPieces):
    questions, ids = [], []
    for i, item in enumerate(items):
        q = item if isinstance(item, str) else _field(item, "question")
        ident = f"#{i}" if isinstance(item, str) else _item_id(item, i)
        if not isinstance(q, str) or not q.strip():
            raise DataError(f"example {ident}: missing or empty question")
        questions.append(q)
        ids.append(ident)
    tokenised = tokenizer(questions, add_special_tokens=False)["input_ids"] if questions else []
    for ident, q_ids in zip(ids, tokenised, strict=True):
        if len(q_ids) > cfg.max_question_tokens:
            raise DataError(
                f"example {ident}: its question has {len(q_ids)} tokens, more than "
                f"student.max_question_tokens={cfg.max_question_tokens}; raise the limit or drop the example"
            )
    return ids, tokenised


def encode_questions(items: Sequence[Any], tokenizer, cfg: StudentConfig) -> list[EncodedExample]:
    """Prompts only (``question ###``): for target-domain batches, features and generation.

    ``items`` are strings, ``Example``s, or mappings with ``question`` (and ``id``/``example_id``).
    Raises ``DataError`` naming the example when a question exceeds ``cfg.max_question_tokens``.
    """
    pieces = _PromptPieces(tokenizer, cfg)
    ids, tokenised = _encode_questions(items, tokenizer, cfg, pieces)
    out = []
    for ident, q_ids in zip(ids, tokenised, strict=True):
        input_ids = tuple(pieces.prefix) + tuple(q_ids) + tuple(pieces.suffix)
        start = len(pieces.prefix)
        out.append(EncodedExample(ident, input_ids, start, start + len(q_ids), len(input_ids)))
    return out


def encode_train(
    items: Sequence[Any], tokenizer, cfg: StudentConfig, *, answer_only: bool = False
) -> list[EncodedExample]:
    """Prompt + target (+ EOS) for every labeled item.

    ``items`` are mappings or objects with ``question``, ``answer`` and (for CoT) ``rationale``,
    e.g. teacher-corpus records. A sequence longer than ``cfg.max_length`` loses the end of its
    target (one warning with the count); a question over ``cfg.max_question_tokens`` raises.
    """
    pieces = _PromptPieces(tokenizer, cfg)
    ids, tokenised = _encode_questions(items, tokenizer, cfg, pieces)
    targets, add_eos = [], []
    for i, item in enumerate(items):
        answer = _field(item, "answer")
        if answer is None:
            raise DataError(f"example {ids[i]}: missing answer")
        rationale = _field(item, "rationale")
        if not answer_only and rationale is None:
            raise DataError(f"example {ids[i]}: missing rationale (needed for a CoT target)")
        text, eos = pieces.target_text(format_target(str(answer), rationale, answer_only=answer_only))
        targets.append(text)
        add_eos.append(eos)
    target_ids = tokenizer(targets, add_special_tokens=False)["input_ids"] if targets else []
    out, truncated = [], []
    for ident, q_ids, t_ids, eos in zip(ids, tokenised, target_ids, add_eos, strict=True):
        prompt = tuple(pieces.prefix) + tuple(q_ids) + tuple(pieces.suffix)
        target = tuple(t_ids) + ((tokenizer.eos_token_id,) if eos else ())
        if len(prompt) >= cfg.max_length:
            raise DataError(
                f"example {ident}: its prompt has {len(prompt)} tokens, leaving no room for a target "
                f"within student.max_length={cfg.max_length}"
            )
        cut = len(prompt) + len(target) > cfg.max_length
        if cut:
            target = target[: cfg.max_length - len(prompt)]
            truncated.append(ident)
        start = len(pieces.prefix)
        out.append(EncodedExample(ident, prompt + target, start, start + len(q_ids), len(prompt), cut))
    if truncated:
        logger.warning(
            "%d of %d training examples exceed student.max_length=%d; the end of their targets was "
            "cut (first: %s)",
            len(truncated), len(out), cfg.max_length, ", ".join(truncated[:5]),
        )
    return out


def _pad(examples: Sequence[EncodedExample], pad_token_id: int, *, left: bool, with_labels: bool):
    if not examples:
        raise ValueError("cannot collate an empty batch")
    width = max(len(e.input_ids) for e in examples)
    n = len(examples)
    input_ids = torch.full((n, width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((n, width), dtype=torch.long)
    labels = torch.full((n, width), IGNORE_INDEX, dtype=torch.long)
    question_mask = torch.zeros((n, width), dtype=torch.long)
    for row, e in enumerate(examples):
        length = len(e.input_ids)
        off = width - length if left else 0
        input_ids[row, off : off + length] = torch.tensor(e.input_ids, dtype=torch.long)
        attention_mask[row, off : off + length] = 1
        question_mask[row, off + e.question_start : off + e.question_end] = 1
        if with_labels and e.target_len:
            labels[row, off + e.prompt_len : off + length] = input_ids[row, off + e.prompt_len : off + length]
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels, "question_mask": question_mask}


def collate_train(examples: Sequence[EncodedExample], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Right-padded ``input_ids, attention_mask, labels`` (−100 on prompt and padding), ``question_mask``."""
    return _pad(examples, pad_token_id, left=False, with_labels=True)


def collate_questions(examples: Sequence[EncodedExample], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Right-padded question-only batch (target domains, features): same keys, ``labels`` all −100."""
    return _pad(examples, pad_token_id, left=False, with_labels=False)


def collate_prompts(examples: Sequence[EncodedExample], pad_token_id: int) -> dict[str, torch.Tensor]:
    """LEFT-padded prompts for generation: ``input_ids, attention_mask, question_mask``."""
    batch = _pad(examples, pad_token_id, left=True, with_labels=False)
    del batch["labels"]
    return batch
