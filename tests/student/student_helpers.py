"""Helpers of the student tests: tiny students built on the session's tiny random model."""

from __future__ import annotations

import torch

from prada.config import LoraConfig, PromptEncoderConfig, StudentConfig
from prada.student.format import collate_train, encode_train
from prada.student.student import Student

ITEMS = [
    {"example_id": "toy/0", "question": "Tom had 12 marbles. He gave 4 to Sam. How many are left?",
     "rationale": "Tom had 12 marbles and gave 4, so 12 - 4 = 8.", "answer": "8"},
    {"example_id": "toy/1", "question": "There are 5 apples and 3 oranges. How many fruits?",
     "rationale": "5 + 3 = 8.", "answer": "8"},
    {"example_id": "toy/2", "question": "A coin is heads up. Ka flips the coin. Is it still heads up?",
     "rationale": "The coin was flipped once, so it is tails up.", "answer": "no"},
    {"example_id": "toy/3", "question": "What is 9 times 7?", "rationale": "9 * 7 = 63.", "answer": "63"},
]

COMBOS = [
    ("frozen", True),
    ("lora", False),
    ("lora", True),
    ("full", False),
    ("full", True),
]
"""(backbone, prompt encoder) combinations that have something to train."""


def make_student(cfg: StudentConfig, backbone: str = "full", prompt: bool = False, seed: int = 0,
                 virtual: int = 4) -> Student:
    torch.manual_seed(seed)
    pe = PromptEncoderConfig(num_virtual_tokens=virtual, hidden_size=16) if prompt else None
    lora = LoraConfig(r=4, alpha=8, dropout=0.0) if backbone == "lora" else None
    return Student.build(cfg, backbone, pe, lora)


def train_batch(student: Student, cfg: StudentConfig, items=ITEMS) -> dict[str, torch.Tensor]:
    enc = encode_train(items, student.tokenizer, cfg)
    return collate_train(enc, student.tokenizer.pad_token_id)


def optimise(student: Student, batch: dict[str, torch.Tensor], steps: int, lr: float = 1e-2) -> list[float]:
    params = [p for group in student.trainable_parameters().values() for p in group]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    student.train()
    losses = []
    for _ in range(steps):
        loss = student(**batch).lm_loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    student.eval()
    return losses
