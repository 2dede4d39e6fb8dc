"""Helpers of the training tests, imported by name (``from training_helpers import ...``); the
fixtures built on them live in ``conftest.py``."""

from __future__ import annotations

import json
from pathlib import Path

SOURCE, TARGET = "synth_last_letters", "synth_last_letters_long"


def write_corpus(path: Path, task: str = SOURCE, n: int = 16, samples: int = 1) -> Path:
    """A teacher corpus (one line per kept rationale) from ``task``'s gold rationales."""
    from prada.data.tasks import get_task

    examples = get_task(task).load("train")[:n]
    lines = []
    for e in examples:
        for k in range(samples):
            rationale = e.rationale if k == 0 else f"{e.rationale} (sample {k})"
            lines.append({"example_id": e.id, "dataset": e.dataset, "question": e.question, "answer": e.answer,
                          "rationale": rationale, "prediction": e.answer, "correct": True, "sample_index": k})
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    return path
