"""Pooled question features of a model, per domain, for t-SNE and the proxy A-distance.

``extract_features(model_ref, {"gsm8k": [...], "svamp": [...]}, cfg)`` runs each domain's questions
(Fine-tune-CoT prompt ``{question} ###``, the same tokenisation as training) through the student
without gradients, right-padded in batches of ``eval.batch_size``, and pools the last-layer hidden
states over the question's own tokens (``adversarial.pooling``; virtual P-Tuning tokens, ``###`` and
padding excluded) — exactly the features the domain classifier sees in training. With
``out_path`` the arrays are also saved as one ``.npz`` (one ``(N, D)`` float32 array per domain),
conventionally ``RUN_DIR/features/{model}.npz``.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from prada.config import RunConfig
from prada.data.example import Example
from prada.errors import EvaluationError
from prada.io import write_bytes_atomic
from prada.progress import Progress, silent

logger = logging.getLogger(__name__)


@torch.no_grad()
def _domain_features(student: Any, examples: Sequence[Example], batch_size: int, pooling: str,
                     on_batch: Callable[[int], None] | None = None) -> np.ndarray:
    from prada.student.format import collate_questions, encode_questions

    encoded = encode_questions(list(examples), student.tokenizer, student.student_cfg)
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i].input_ids))  # similar lengths per batch
    out = np.zeros((len(encoded), student.hidden_size), dtype=np.float32)
    pad_id = student.tokenizer.pad_token_id
    for lo in range(0, len(order), batch_size):
        idx = order[lo: lo + batch_size]
        batch = collate_questions([encoded[i] for i in idx], pad_id)
        batch = {k: v.to(student.device) for k, v in batch.items()}
        res = student(batch["input_ids"], batch["attention_mask"], question_mask=batch["question_mask"],
                      pooling=pooling)
        out[idx] = res.features.float().cpu().numpy()  # (b, D)
        if on_batch is not None:
            on_batch(len(idx))
    return out


def save_features(path: str | Path, features: dict[str, np.ndarray]) -> Path:
    """Write ``features`` as an ``.npz`` atomically (temporary file + rename)."""

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    arrays: dict[str, Any] = {k: np.asarray(v, dtype=np.float32) for k, v in features.items()}
    np.savez(buf, **arrays)
    write_bytes_atomic(path, buf.getvalue())
    return path


def extract_features(
    model_ref: str | Path | Any,
    examples_by_domain: dict[str, Sequence[Example]],
    cfg: RunConfig,
    *,
    out_path: str | Path | None = None,
    progress: Progress | None = None,
    name: str | None = None,
) -> dict[str, np.ndarray]:
    """``{domain: (N, D) float32}`` pooled question features; saved to ``out_path`` if given.

    ``model_ref`` is a checkpoint directory, a plain model (folder/alias) or a loaded ``Student``.
    ``progress`` shows questions done (``prada.progress``; default: silent) under ``name``.
    """
    from prada.evaluation.evaluate import load_model_for_eval

    if not examples_by_domain:
        raise EvaluationError("extract_features: no domains given")
    student: Any  # a loaded Student, or a stand-in with its interface (tests)
    if hasattr(model_ref, "causal_lm") and hasattr(model_ref, "tokenizer"):
        student = model_ref
    else:
        student, _ = load_model_for_eval(model_ref, cfg.student, cfg.eval.device, cfg.eval.dtype)
    was_training = student.training
    student.eval()
    total = sum(len(examples) for examples in examples_by_domain.values())
    name = name or (str(model_ref) if isinstance(model_ref, (str, Path)) else type(model_ref).__name__)
    try:
        feats = {}
        with (progress or silent()).stage(f"features {name}", total, "questions") as stage:
            for domain, examples in examples_by_domain.items():
                if not examples:
                    raise EvaluationError(f"extract_features: domain '{domain}' has no examples")
                feats[domain] = _domain_features(student, examples, cfg.eval.batch_size, cfg.adversarial.pooling,
                                                 on_batch=stage.advance)
    finally:
        student.train(was_training)
    if out_path is not None:
        save_features(out_path, feats)
        logger.info("features saved to %s", out_path)
    return feats
