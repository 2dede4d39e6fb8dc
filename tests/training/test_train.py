"""The training loop end to end on a tiny random student (CPU, seconds per run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from training_helpers import write_corpus

from prada.errors import CheckpointError
from prada.io import read_json, read_jsonl
from prada.methods import method_spec
from prada.student.student import Student, build_student
from prada.training import TrainSummary, train
from prada.training.summary import TRAIN_SUMMARY_FORMAT

LOG_KEYS = {"step", "L_y", "L_d", "domain_acc", "lambda", "lr", "tokens_per_s", "elapsed_s"}


def _initial_student(cfg, method: str, seed: int = 0):
    """The student (and classifier) exactly as ``train`` initialises them."""
    from accelerate.utils import set_seed

    from prada.adversarial import DomainClassifier

    set_seed(seed)
    student = build_student(cfg, prompt_encoder=method_spec(method).prompt_encoder)
    classifier = None
    if method in ("dann_cot", "prada"):
        classifier = DomainClassifier(student.hidden_size, 1 + len(cfg.data.targets),
                                      cfg.adversarial.classifier_hidden, cfg.adversarial.classifier_dropout)
    return student, classifier


def test_outputs_layout_log_and_summary(make_cfg, corpus, tmp_path):
    cfg = make_cfg("train.backbone=lora", "train.max_steps=5", "train.save_every=2",
                   "train.keep_checkpoints=1", "train.eval_checkpoints=true")
    out = tmp_path / "run"
    summary = train(cfg, "prada", 0, out, corpus)

    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-4"]  # keep_checkpoints=1
    assert sorted(p.name for p in (out / "snapshots").iterdir()) == ["step-2", "step-4"]
    assert (out / "checkpoints/step-4/trainer_state.pt").is_file()
    assert not (out / "snapshots/step-2/trainer_state.pt").exists()  # weights only
    assert len(list((out / "tb").glob("events.out.tfevents.*"))) == 1
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]

    log = read_jsonl(out / "log.jsonl")
    assert [r["step"] for r in log] == [1, 2, 3, 4, 5]
    assert all(LOG_KEYS <= set(r) for r in log)
    assert log[0]["lambda"] == 0.0 and 0 < log[-1]["lambda"] < cfg.adversarial.lambda_max
    assert all(0.0 <= r["domain_acc"] <= 1.0 for r in log)

    assert read_json(out / "summary.json") == summary.to_dict()  # versioned on disk
    assert read_json(out / "summary.json")["format"] == TRAIN_SUMMARY_FORMAT
    assert TrainSummary.read(out / "summary.json") == summary
    assert summary.steps == 5 and summary.method == "prada" and summary.seed == 0
    assert set(summary.final) == {"L_y", "L_d", "domain_acc", "lambda"}
    assert summary.examples["source"] == 16 and summary.examples["targets"] == {"synth_last_letters_long": 32}
    assert set(summary.trainable_parameters) == {"backbone", "prompt_encoder", "classifier"}

    final = Student.from_checkpoint(out / "final")
    assert final.backbone_mode == "lora" and final.prompt_encoder is not None
    assert json.loads((out / "final/prada_checkpoint.json").read_text())["step"] == 5
    assert load_file(out / "final/domain_classifier.safetensors")["net.4.weight"].shape == (1, 16)


def test_finished_run_returns_its_summary_without_work(make_cfg, corpus, tmp_path, monkeypatch):
    cfg = make_cfg("train.max_steps=1", "train.backbone=full")
    first = train(cfg, "ft", 0, tmp_path, corpus)
    monkeypatch.setattr("prada.training.loop.build_student", lambda *a, **k: pytest.fail("retrained"))
    assert train(cfg, "ft", 0, tmp_path, corpus) == first


@pytest.mark.parametrize(
    ("backbone", "method"),
    [("frozen", "prada"), ("lora", "prada"), ("full", "ft_cot"), ("full", "dann_cot")],
)
def test_only_the_parameters_the_mode_trains_change(make_cfg, corpus, tmp_path, backbone, method):
    cfg = make_cfg(f"train.backbone={backbone}", "train.max_steps=3")
    init_student, init_clf = _initial_student(cfg, method)
    train(cfg, method, 0, tmp_path, corpus)
    final = Student.from_checkpoint(tmp_path / "final")

    before = dict(init_student.named_parameters())
    after = dict(final.named_parameters())
    assert before.keys() == after.keys()
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    backbone_names = {n for n in before if n.startswith("backbone.")}
    if backbone == "frozen":
        expected = {n for n in before if n.startswith("prompt_encoder.")}
    elif backbone == "lora":
        expected = {n for n in backbone_names if "lora_" in n} | {n for n in before if n.startswith("prompt_encoder.")}
    else:
        expected = backbone_names
    assert changed == expected  # bit-identical outside the trained set, every trained tensor moved
    if init_clf is not None:
        clf_after = load_file(tmp_path / "final/domain_classifier.safetensors")
        assert all(not torch.equal(v, clf_after[k]) for k, v in init_clf.state_dict().items())


def test_loss_falls_when_overfitting_a_handful_of_examples(make_cfg, tmp_path):
    corpus = write_corpus(tmp_path / "c.jsonl", n=4)
    cfg = make_cfg("train.backbone=full", "train.max_steps=60", "train.lr=1e-2", "train.batch_size=4",
                   "train.lr_schedule=constant")
    summary = train(cfg, "ft_cot", 0, tmp_path / "out", corpus)
    log = read_jsonl(tmp_path / "out/log.jsonl")
    # Measured: L_y 5.94 → 0.008 after 60 steps (random 384-token vocabulary: ln 384 = 5.95).
    assert log[0]["L_y"] == pytest.approx(5.95, abs=0.1)
    print(f"L_y {log[0]['L_y']:.3f} -> {summary.final['L_y']:.3f}")
    assert summary.final["L_y"] < 0.5 * log[0]["L_y"]


def test_dann_sanity_two_text_domains_through_the_student(make_cfg, tmp_path):
    """Source: last-letter questions; target: coin-flip questions (clearly different text).

    The reversed gradient must reach the student and push the classifier's loss up. Measured
    (torch 2.13 CPU, seed 0, 80 steps, classifier LR 1e-2 constant): with λ=0 L_d falls from 1.16
    to 0.004 and the domain accuracy is 1.0 throughout; with λ_max=3 L_d stays near 1.5 and the
    accuracy near 0.5 for the 40 steps while λ rises, then the still-learning classifier wins
    (these domains differ in every token: on a 32-dim random student no feature can hide them).
    So this checks the game's direction over training, not invariance at the end; see
    tests/adversarial for a fresh-probe check on a small extractor.
    """

    def run(lam: float) -> tuple[float, float]:
        cfg = make_cfg("data.targets=[synth_coin_flip]", "train.backbone=full", "train.batch_size=8",
                       "train.max_steps=80", "train.lr=3e-4", "adversarial.classifier_lr=1e-2",
                       "adversarial.classifier_dropout=0.0", f"adversarial.lambda_max={lam}")
        corpus = write_corpus(tmp_path / "c.jsonl", n=32)
        train(cfg, "dann_cot", 0, tmp_path / f"lam{lam}", corpus)
        log = read_jsonl(tmp_path / f"lam{lam}/log.jsonl")
        return sum(r["domain_acc"] for r in log) / len(log), sum(r["L_d"] for r in log) / len(log)

    (acc_plain, ld_plain), (acc_adv, ld_adv) = run(0.0), run(3.0)
    print(f"over 80 steps: lambda=0 acc {acc_plain:.3f} L_d {ld_plain:.3f}; lambda=3 acc {acc_adv:.3f} L_d {ld_adv:.3f}")
    assert acc_plain >= 0.95
    assert acc_adv <= acc_plain - 0.15
    assert ld_adv >= 2 * ld_plain


@pytest.mark.parametrize("domains, logits", [("binary", 1), ("per_target", 3)])
def test_two_targets_binary_or_per_target(make_cfg, corpus, tmp_path, domains, logits):
    cfg = make_cfg("data.targets=[synth_last_letters_long, synth_coin_flip]", "train.backbone=full",
                   "train.max_steps=2", "adversarial.target_batch_size=5", f"adversarial.domains={domains}")
    summary = train(cfg, "dann_cot", 0, tmp_path, corpus)
    assert set(summary.examples["targets"]) == {"synth_last_letters_long", "synth_coin_flip"}
    assert load_file(tmp_path / "final/domain_classifier.safetensors")["net.4.weight"].shape == (logits, 16)


def test_gradient_accumulation_matches_one_big_batch(make_cfg, corpus, tmp_path):
    common = ("train.backbone=full", "train.max_steps=2", "adversarial.classifier_dropout=0.0",
              "train.max_grad_norm=0")
    train(make_cfg(*common, "train.batch_size=8", "train.grad_accum=1"), "dann_cot", 0, tmp_path / "a", corpus)
    train(make_cfg(*common, "train.batch_size=4", "train.grad_accum=2"), "dann_cot", 0, tmp_path / "b", corpus)
    a, b = Student.from_checkpoint(tmp_path / "a/final"), Student.from_checkpoint(tmp_path / "b/final")
    for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.allclose(pa, pb, atol=1e-5), name
    la, lb = read_jsonl(tmp_path / "a/log.jsonl"), read_jsonl(tmp_path / "b/log.jsonl")
    assert la[0]["L_y"] == pytest.approx(lb[0]["L_y"], rel=1e-5)


def test_one_process_trains_runs_of_different_precision_one_after_another(make_cfg, corpus, tmp_path):
    """accelerate's process-wide state must not pin the first run's mixed_precision (a sweep over
    train.mixed_precision, or a notebook, trains several in one process)."""
    for precision in ("bf16", "no"):
        summary = train(make_cfg("train.max_steps=1", f"train.mixed_precision={precision}"), "ft_cot", 0,
                        tmp_path / precision, corpus)
        assert summary.mixed_precision == precision and summary.device in ("cpu", "cuda")


def test_gradient_checkpointing_gives_the_same_weights(make_cfg, corpus, tmp_path):
    common = ("train.backbone=full", "train.max_steps=2", "adversarial.classifier_dropout=0.0")
    train(make_cfg(*common), "prada", 0, tmp_path / "a", corpus)
    cfg = make_cfg(*common, "train.gradient_checkpointing=true")
    from prada.training.loop import build_student, method_spec

    assert build_student(cfg, method_spec("prada"))[0].causal_lm.is_activation_checkpointing
    train(cfg, "prada", 0, tmp_path / "b", corpus)
    a, b = Student.from_checkpoint(tmp_path / "a/final"), Student.from_checkpoint(tmp_path / "b/final")
    for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.allclose(pa, pb, atol=1e-6), name


class _Stop(Exception):
    pass


@pytest.mark.parametrize("backbone", ["full", "lora"])
def test_resume_gives_weights_identical_to_an_uninterrupted_run(make_cfg, corpus, tmp_path, monkeypatch, backbone):
    # classifier dropout (and LoRA dropout) on: the RNG state must be restored too.
    cfg = make_cfg(f"train.backbone={backbone}", "train.max_steps=6", "train.save_every=2",
                   "adversarial.classifier_dropout=0.1", "train.warmup_ratio=0.2")
    train(cfg, "prada", 0, tmp_path / "full", corpus)

    from prada.training import checkpoint as ckpt

    real_prune = ckpt.prune

    def stop_after_step_4(parent: Path, keep: int) -> None:
        real_prune(parent, keep)
        if (parent / "step-4").is_dir():
            raise _Stop

    monkeypatch.setattr(ckpt, "prune", stop_after_step_4)
    with pytest.raises(CheckpointError) as failed:  # the writer thread's error, raised by train()
        train(cfg, "prada", 0, tmp_path / "resumed", corpus)
    assert isinstance(failed.value.__cause__, _Stop)
    monkeypatch.setattr(ckpt, "prune", real_prune)
    assert not (tmp_path / "resumed/final").exists()
    summary = train(cfg, "prada", 0, tmp_path / "resumed", corpus)
    assert summary.resumed_from_step == 4

    for name in ["prompt_encoder", "domain_classifier"]:
        a = load_file(tmp_path / f"full/final/{name}.safetensors")
        b = load_file(tmp_path / f"resumed/final/{name}.safetensors")
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    a = Student.from_checkpoint(tmp_path / "full/final")
    b = Student.from_checkpoint(tmp_path / "resumed/final")
    for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.equal(pa, pb), name
    log_a = read_jsonl(tmp_path / "full/log.jsonl")
    log_b = read_jsonl(tmp_path / "resumed/log.jsonl")
    assert [r["step"] for r in log_b] == [1, 2, 3, 4, 5, 6]
    assert [r["L_y"] for r in log_a] == [r["L_y"] for r in log_b]
    assert [r["L_d"] for r in log_a] == [r["L_d"] for r in log_b]


def test_resume_refuses_a_changed_config_and_no_resume_starts_over(make_cfg, corpus, tmp_path, monkeypatch):
    from prada.errors import TrainingError
    from prada.training import checkpoint as ckpt

    cfg = make_cfg("train.backbone=full", "train.max_steps=4", "train.save_every=2")
    real_prune = ckpt.prune

    def stop(parent: Path, keep: int) -> None:
        real_prune(parent, keep)
        raise _Stop

    monkeypatch.setattr(ckpt, "prune", stop)
    with pytest.raises(CheckpointError):
        train(cfg, "ft_cot", 0, tmp_path, corpus)
    monkeypatch.setattr(ckpt, "prune", real_prune)
    changed = make_cfg("train.backbone=full", "train.max_steps=4", "train.save_every=2", "train.lr=5e-4")
    with pytest.raises(TrainingError, match=r"different config.*train.lr: 0.001 -> 0.0005"):
        train(changed, "ft_cot", 0, tmp_path, corpus)
    summary = train(changed, "ft_cot", 0, tmp_path, corpus, resume=False)
    assert summary.resumed_from_step is None
    assert [r["step"] for r in read_jsonl(tmp_path / "log.jsonl")] == [1, 2, 3, 4]


@pytest.mark.parametrize("room", [True, False])
def test_checkpoints_go_to_the_background_writer_only_when_their_copy_fits_in_memory(make_cfg, corpus, tmp_path,
                                                                                     monkeypatch, room):
    import prada.hardware
    from prada.training import checkpoint as ckpt

    monkeypatch.setattr(prada.hardware, "available_memory_bytes", lambda: 1 << 50 if room else 1 << 10)
    submitted = []
    real_submit = ckpt.BackgroundWriter.submit

    def submit(self, job):
        submitted.append(job)
        real_submit(self, job)

    monkeypatch.setattr(ckpt.BackgroundWriter, "submit", submit)
    cfg = make_cfg("train.backbone=full", "train.max_steps=4", "train.save_every=2", "train.keep_checkpoints=0")
    train(cfg, "prada", 0, tmp_path, corpus)
    assert len(submitted) == (1 if room else 0)
    state = ckpt.load_trainer_state(tmp_path / "checkpoints/step-2")  # written either way, complete
    assert state["step"] == 2 and (tmp_path / "checkpoints/step-2/domain_classifier.safetensors").is_file()
