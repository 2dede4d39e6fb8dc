"""Fine-tune-CoT format: masks, labels, truncation, refusal of over-long questions, collators."""

from __future__ import annotations

import logging

import pytest
import torch
from student_helpers import ITEMS

from prada.config import StudentConfig
from prada.errors import ConfigError, DataError
from prada.student.format import (
    IGNORE_INDEX,
    PROMPT_SUFFIX,
    collate_prompts,
    collate_questions,
    collate_train,
    encode_questions,
    encode_train,
    format_target,
)
from prada.student.tiny import build_tiny_tokenizer


@pytest.fixture(scope="module")
def tok():
    return build_tiny_tokenizer()


CFG = StudentConfig(model="unused", max_length=96, max_question_tokens=48)


def test_question_mask_and_labels_cover_exactly_their_parts(tok):
    enc = encode_train(ITEMS, tok, CFG)
    batch = collate_train(enc, tok.pad_token_id)
    assert set(batch) == {"input_ids", "attention_mask", "labels", "question_mask"}
    lengths = batch["attention_mask"].sum(1)
    assert len(set(lengths.tolist())) > 1, "the toy items should need padding"
    for row, item in enumerate(ITEMS):
        ids, qm, labels = batch["input_ids"][row], batch["question_mask"][row].bool(), batch["labels"][row]
        # the question's own tokens, nothing else (not " ###", not target, not padding)
        assert ids[qm].tolist() == tok(item["question"], add_special_tokens=False)["input_ids"]
        assert tok.decode(ids[qm]) == item["question"]
        q_pos = qm.nonzero()[:, 0]
        assert q_pos.tolist() == list(range(int(q_pos[0]), int(q_pos[-1]) + 1))  # contiguous
        # the prompt suffix follows the question and carries no label
        suffix = tok(PROMPT_SUFFIX, add_special_tokens=False)["input_ids"]
        end = int(q_pos[-1]) + 1
        assert ids[end : end + len(suffix)].tolist() == suffix
        # labels: exactly target + EOS; −100 on prompt and padding
        target = tok(format_target(item["answer"], item["rationale"]), add_special_tokens=False)["input_ids"]
        assert labels[labels != IGNORE_INDEX].tolist() == target + [tok.eos_token_id]
        assert (labels[: end + len(suffix)] == IGNORE_INDEX).all()
        assert (labels[int(lengths[row]) :] == IGNORE_INDEX).all()
        assert (batch["attention_mask"][row, int(lengths[row]) :] == 0).all()
        assert (qm & (labels != IGNORE_INDEX)).sum() == 0
    assert tok.decode(batch["labels"][0][batch["labels"][0] != IGNORE_INDEX]) == (
        " Tom had 12 marbles and gave 4, so 12 - 4 = 8. --> 8 END</s>"
    )


def test_answer_only_target(tok):
    [enc] = encode_train(ITEMS[:1], tok, CFG, answer_only=True)
    batch = collate_train([enc], tok.pad_token_id)
    assert tok.decode(batch["labels"][0][batch["labels"][0] != IGNORE_INDEX]) == " 8 END</s>"


def test_truncation_cuts_the_target_end_and_warns(tok, caplog):
    full = encode_train(ITEMS, tok, CFG)
    cfg = StudentConfig(model="unused", max_length=max(e.prompt_len for e in full) + 3, max_question_tokens=48)
    n_long = sum(len(e.input_ids) > cfg.max_length for e in full)
    assert 0 < n_long
    with caplog.at_level(logging.WARNING, logger="prada.student.format"):
        enc = encode_train(ITEMS, tok, cfg)
    assert f"{n_long} of {len(ITEMS)} training examples exceed student.max_length={cfg.max_length}" in caplog.text
    for short, long in zip(enc, full, strict=True):
        assert short.truncated == (len(long.input_ids) > cfg.max_length)
        assert len(short.input_ids) == min(cfg.max_length, len(long.input_ids))
        assert short.input_ids == long.input_ids[: len(short.input_ids)]  # the end is cut, never the question
        assert (short.prompt_len, short.question_end) == (long.prompt_len, long.question_end)
    assert sum(e.truncated for e in enc) == n_long


def test_over_long_question_is_refused_naming_the_example(tok):
    cfg = StudentConfig(model="unused", max_question_tokens=5)
    with pytest.raises(DataError, match=r"toy/0.*max_question_tokens=5"):
        encode_train(ITEMS, tok, cfg)
    with pytest.raises(DataError, match="toy/0"):
        encode_questions(ITEMS, tok, cfg)


def test_missing_fields_are_data_errors(tok):
    with pytest.raises(DataError, match="rationale"):
        encode_train([{"id": "a/1", "question": "q?", "answer": "1"}], tok, CFG)
    with pytest.raises(DataError, match="a/2"):
        encode_train([{"id": "a/2", "question": " ", "answer": "1", "rationale": "r"}], tok, CFG)


def test_question_batches_and_left_padded_prompts(tok):
    enc = encode_questions([it["question"] for it in ITEMS], tok, CFG)
    right = collate_questions(enc, tok.pad_token_id)
    assert (right["labels"] == IGNORE_INDEX).all()
    left = collate_prompts(enc, tok.pad_token_id)
    assert set(left) == {"input_ids", "attention_mask", "question_mask"}
    assert (left["attention_mask"][:, -1] == 1).all()  # LEFT padding: prompts end together
    suffix = tok(PROMPT_SUFFIX, add_special_tokens=False)["input_ids"]
    for row, item in enumerate(ITEMS):
        for batch in (right, left):
            ids = batch["input_ids"][row][batch["attention_mask"][row].bool()]
            assert tok.decode(ids) == item["question"] + PROMPT_SUFFIX
            assert tok.decode(batch["input_ids"][row][batch["question_mask"][row].bool()]) == item["question"]
        assert left["input_ids"][row, -len(suffix) :].tolist() == suffix
    # a question-only batch tokenises the question exactly as the training batch does
    train = collate_train(encode_train(ITEMS, tok, CFG), tok.pad_token_id)
    for row in range(len(ITEMS)):
        assert torch.equal(train["input_ids"][row][train["question_mask"][row].bool()],
                           right["input_ids"][row][right["question_mask"][row].bool()])


CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def test_chat_template(tok):
    cfg = StudentConfig(model="unused", chat_template=True, max_length=128)
    with pytest.raises(ConfigError, match="no chat template"):
        encode_train(ITEMS, tok, cfg)
    chat_tok = build_tiny_tokenizer()
    chat_tok.chat_template = CHAT_TEMPLATE
    enc = encode_train(ITEMS, chat_tok, cfg)
    batch = collate_train(enc, chat_tok.pad_token_id)
    row_ids = batch["input_ids"][0][batch["attention_mask"][0].bool()]
    assert chat_tok.decode(row_ids).startswith("<|user|>" + ITEMS[0]["question"] + "</s><|assistant|>")
    assert chat_tok.decode(batch["input_ids"][0][batch["question_mask"][0].bool()]) == ITEMS[0]["question"]
    target = batch["labels"][0][batch["labels"][0] != IGNORE_INDEX]
    assert chat_tok.decode(target) == "Tom had 12 marbles and gave 4, so 12 - 4 = 8. --> 8 END</s>"
    prompts = collate_prompts(encode_questions(ITEMS, chat_tok, cfg), chat_tok.pad_token_id)
    assert chat_tok.decode(prompts["input_ids"][0][prompts["attention_mask"][0].bool()]).endswith("<|assistant|>")
