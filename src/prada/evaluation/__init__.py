"""Evaluation of students and base models: batched greedy generation, answer extraction,
per-question predictions and accuracy; pooled question features for t-SNE / proxy A-distance.

- ``evaluate_model(model_ref, task, cfg, out_dir, prompt_style)`` → ``out_dir/predictions.jsonl`` +
  ``out_dir/metrics.json`` (skipped when ``metrics.json`` exists, unless ``force=True``); returns
  the ``EvalMetrics`` it wrote (``prada.eval_metrics``: torch-free, for the files' readers).
- ``evaluate_tasks(model_ref, tasks, cfg, out_dirs, prompt_style)`` → the same for several tasks,
  the model loaded once and all their questions decoded in one stream.
- ``extract_features(model_ref, examples_by_domain, cfg, out_path=None)`` → ``{domain: (N, D)}``.
- ``greedy_generate(student, prompts, ...)`` → the batched KV-cache decoder underneath.
"""

from prada.eval_metrics import EvalMetrics
from prada.evaluation.evaluate import (
    PROMPT_STYLES,
    evaluate_model,
    evaluate_tasks,
    load_model_for_eval,
    select_examples,
)
from prada.evaluation.features import extract_features, save_features
from prada.evaluation.generate import Generation, GenerationStats, greedy_generate

__all__ = [
    "EvalMetrics",
    "PROMPT_STYLES",
    "evaluate_model",
    "evaluate_tasks",
    "extract_features",
    "save_features",
    "load_model_for_eval",
    "select_examples",
    "greedy_generate",
    "Generation",
    "GenerationStats",
]
