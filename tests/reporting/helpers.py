"""A fabricated run directory (files only) for the reporting tests: helpers imported by the tests
(``from .helpers import ...``) and by the ``run_dir`` fixture in ``conftest.py``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from prada.config import DataConfig, ReportConfig, RunConfig, dump_yaml

SOURCE = "multiarith"
TARGETS = ["addsub", "svamp"]
N_Q = 20


def correct_vector(method: str, seed: int, task: str, step: int | None = None) -> list[int]:
    """Deterministic 0/1 outcomes: PRADA a bit better on targets, later steps better."""
    base = {"ft_cot": 6, "prada": 8, "zero_shot_cot": 3}[method]
    if task != SOURCE and method == "prada":
        base += 2
    base += seed  # seeds differ
    if step is not None:
        base = max(0, base - (40 - step) // 10)
    return [1 if i < base else 0 for i in range(N_Q)]


def write_eval(run: Path, model: str, task: str, vec: list[int], step: int | None) -> None:
    d = run / "eval" / model / task
    d.mkdir(parents=True, exist_ok=True)
    with (d / "predictions.jsonl").open("w") as f:
        for i, c in enumerate(vec):
            f.write(json.dumps({"id": f"{task}/{i}", "question": "q", "gold": "1", "output": "o",
                                "prediction": "1" if c else "2", "correct": bool(c)}) + "\n")
    metrics = {"task": task, "split": "test", "n": len(vec), "correct": sum(vec),
               "accuracy": sum(vec) / len(vec), "model": model, "step": step}
    (d / "metrics.json").write_text(json.dumps(metrics))


def make_run_dir(root: Path, seeds: tuple[int, ...] = (0, 1), *, snapshots: bool = True,
                 features: bool = True, logs: bool = True, baseline: bool = True) -> Path:
    cfg = RunConfig(seeds=list(seeds), data=DataConfig(source=SOURCE, targets=list(TARGETS)),
                    report=ReportConfig(bootstrap_samples=500, feature_examples=60))
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.yaml").write_text(dump_yaml(cfg))
    for method in ("ft_cot", "prada"):
        for seed in seeds:
            name = f"{method}-seed{seed}"
            for task in (SOURCE, *TARGETS):
                write_eval(root, name, task, correct_vector(method, seed, task), 40)
                if snapshots:
                    for step in (10, 20, 30):
                        write_eval(root, f"{name}@step-{step}", task, correct_vector(method, seed, task, step), step)
            if logs:
                tdir = root / "train" / name
                tdir.mkdir(parents=True, exist_ok=True)
                with (tdir / "log.jsonl").open("w") as f:
                    for step in range(1, 41):
                        rec = {"step": step, "L_y": 2.0 / step ** 0.5, "lr": 1e-4, "elapsed_s": step * 0.5,
                               "L_d": None, "domain_acc": None, "lambda": 0.0}
                        if method == "prada":
                            p = step / 40
                            rec.update(L_d=0.69 + 0.05 * np.sin(step), domain_acc=0.5 + 0.2 * (1 - p),
                                       **{"lambda": 0.1 * (2 / (1 + np.exp(-10 * p)) - 1)})
                        f.write(json.dumps(rec) + "\n")
                (tdir / "summary.json").write_text(json.dumps({"steps": 40, "wall_s": 20.0, "tokens_per_s": 900.0}))
            if features:
                rng = np.random.default_rng(seed)
                shift = 3.0 if method == "ft_cot" else 0.0
                arrays = {SOURCE: rng.normal(size=(60, 16))}
                for k, t in enumerate(TARGETS):
                    arrays[t] = rng.normal(size=(60, 16)) + shift * (k + 1) / len(TARGETS)
                (root / "features").mkdir(exist_ok=True)
                np.savez(root / "features" / f"{name}.npz", **arrays)
    if baseline:
        for task in (SOURCE, *TARGETS):
            write_eval(root, "zero_shot_cot", task, correct_vector("zero_shot_cot", 0, task), None)
    return root
