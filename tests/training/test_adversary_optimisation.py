"""The classifier's own optimisation: an LR that does not decay to 0 with the student's, and its
own gradient clipping; target questions shared out evenly across several targets."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from prada.io import read_jsonl
from prada.training import train
from prada.training.loop import ClassifierLR, Trainee, clip_gradients


def test_the_classifier_lr_stays_up_while_the_students_decays_to_zero(make_cfg, corpus, tmp_path) -> None:
    cfg = make_cfg("train.max_steps=6", "train.lr_schedule=linear", "train.warmup_ratio=0.0",
                   "adversarial.classifier_lr=2e-3")
    train(cfg, "dann_cot", 0, tmp_path / "r", corpus)
    log = read_jsonl(tmp_path / "r" / "log.jsonl")
    assert log[-1]["lr"] == pytest.approx(0.0)  # the student's linear decay ends at 0
    assert [r["classifier_lr"] for r in log] == pytest.approx([2e-3] * 6)  # constant after (no) warm-up


def test_classifier_schedules() -> None:
    constant = ClassifierLR("constant", warmup=4, total=100)
    assert [constant(s) for s in (0, 2, 4, 50, 100)] == [0.0, 0.5, 1.0, 1.0, 1.0]
    dann = ClassifierLR("dann", warmup=4, total=100)
    assert dann(0) == 1.0 and dann(100) == pytest.approx(1 / 11 ** 0.75)
    values = [dann(s) for s in range(101)]
    assert all(b < a for a, b in zip(values, values[1:])) and min(values) > 0.16


def test_the_dann_schedule_reaches_the_log(make_cfg, corpus, tmp_path) -> None:
    cfg = make_cfg("train.max_steps=4", "adversarial.classifier_lr=1e-2", "adversarial.classifier_schedule=dann")
    train(cfg, "prada", 0, tmp_path / "r", corpus)
    lrs = [r["classifier_lr"] for r in read_jsonl(tmp_path / "r" / "log.jsonl")]
    assert lrs == pytest.approx([1e-2 / (1 + 10 * s / 4) ** 0.75 for s in range(1, 5)])


class _NoScaler:
    scaler = None


def test_student_and_classifier_are_clipped_separately(make_cfg) -> None:
    """A huge classifier gradient must not shrink the student's step (one joint norm would)."""
    from prada.adversarial import DomainClassifier
    from prada.student.tiny import build_tiny_model

    student = torch.nn.Module()
    student.lm = build_tiny_model(64)  # any module: clip_gradients reads .parameters()
    classifier = DomainClassifier(8, 2, hidden=4, dropout=0.0)
    trainee = Trainee(student, classifier, 1.0)
    for p in student.parameters():
        p.grad = torch.full_like(p, 1e-3)
    for p in classifier.parameters():
        p.grad = torch.full_like(p, 100.0)
    before = [p.grad.clone() for p in student.parameters()]
    cfg = make_cfg("train.max_grad_norm=1.0", "adversarial.classifier_max_grad_norm=0.5")
    student_norm, classifier_norm = clip_gradients(trainee, cfg, _NoScaler())
    assert student_norm < 1.0  # below its threshold: the student's gradient is left as it is
    assert all(torch.equal(a, p.grad) for a, p in zip(before, student.parameters()))
    assert classifier_norm > 100.0
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in classifier.parameters()]))
    assert total.item() == pytest.approx(0.5, rel=1e-4)


def test_targets_share_the_target_questions_evenly(make_cfg, corpus, tmp_path, monkeypatch) -> None:
    """8 target questions a step over 3 targets: 3/3/2 in rotation, so 8 each over 3 steps."""
    from prada.training import loop

    counts: Counter[str] = Counter()
    real_next = loop.Batches.next

    def counting_next(self, device):
        src, tgt, sizes, tokens = real_next(self, device)
        for name, size in zip(self.target_streams, sizes):
            counts[name] += size
        return src, tgt, sizes, tokens

    monkeypatch.setattr(loop.Batches, "next", counting_next)
    cfg = make_cfg("data.targets=[synth_last_letters_long, synth_coin_flip, synth_coin_flip_long]",
                   "train.batch_size=8", "train.max_steps=3")
    train(cfg, "dann_cot", 0, tmp_path / "r", corpus)
    # The sanity pass draws turn 0 and rewinds (the rotation with it); then turns 0, 1, 2:
    # (3, 3, 2) + (3, 3, 2) + (3, 2, 3) + (2, 3, 3) — over the 3 training steps, 8 per target.
    assert [counts[t] for t in ("synth_last_letters_long", "synth_coin_flip", "synth_coin_flip_long")] == [11, 11, 10]
