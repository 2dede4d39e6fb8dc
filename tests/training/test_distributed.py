"""Two CPU processes (gloo) through ``accelerate launch`` and the ``prada train`` CLI.

accelerate 1.15's ``--cpu`` flag launches a single process unless MPI is configured
(``--mpirun_hostfile``); ``--multi_gpu`` uses torchrun, and on a machine without CUDA ``train``
then asks accelerate for MULTI_CPU (gloo)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import yaml
from training_helpers import SOURCE, TARGET, write_corpus

from prada.io import read_json, read_jsonl
from prada.student.student import Student


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_accelerate_launch_two_processes_cpu(tiny_model_dir, tmp_path):
    corpus = write_corpus(tmp_path / "corpus.jsonl", n=16)
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump({
        "output_dir": str(tmp_path / "run"),
        "student": {"model": str(tiny_model_dir), "max_length": 96},
        "data": {"source": SOURCE, "targets": [TARGET], "max_target_examples": 16},
        "prompt_encoder": {"num_virtual_tokens": 4, "hidden_size": 16},
        "adversarial": {"classifier_hidden": 16},
        "train": {"backbone": "lora", "batch_size": 2, "max_steps": 4, "save_every": 2,
                  "eval_checkpoints": True, "lr": 1e-3},
    }))
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
           "-m", "prada.cli", "train", "--config", str(config), "--method", "prada", "--corpus", str(corpus),
           "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]

    # Same layout as a single-process run; written once (by the main process only).
    summary = read_json(out / "summary.json")
    assert summary["num_processes"] == 2 and summary["effective_batch_size"] == 4 and summary["steps"] == 4
    assert [r["step"] for r in read_jsonl(out / "log.jsonl")] == [1, 2, 3, 4]
    assert len(list((out / "tb").glob("events.out.tfevents.*"))) == 1
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-2"]
    assert sorted(p.name for p in (out / "snapshots").iterdir()) == ["step-2"]
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp") or ".old" in p.name]
    assert Student.from_checkpoint(out / "final").backbone_mode == "lora"
    assert proc.stdout.count("trained prada-seed0") == 2  # both processes finished
