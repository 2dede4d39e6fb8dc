"""The methods as data: the one place where each method's name, pieces, prompt style and looks live.

Every other layer derives from this registry: the config validates ``methods`` against it, the
student is built from its feature flags (``prompt_encoder``), training reads ``adversary`` and
``answer_only``, evaluation picks the prompt style, and reports take labels, colours and row order.
It imports nothing from prada but ``errors`` and ``formats`` (its prompt styles): it is the bottom layer.

>>> method_spec("prada").prompt_encoder, method_spec("prada").adversary
(True, True)
>>> [s.name for s in METHOD_SPECS.values() if s.adversary]
['dann_cot', 'prada']
>>> method_spec("prda")
Traceback (most recent call last):
...
prada.errors.TrainingError: unknown method 'prda' (did you mean 'prada'?); valid methods: ['ft', 'ft_cot', 'ptuning_cot', 'dann_cot', 'prada']
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from prada.errors import TrainingError
from prada.formats import (
    ANSWER_ONLY_STYLE,
    STUDENT_STYLE,
    ZERO_SHOT_STYLE,
    PromptStyle,
)


@dataclass(frozen=True)
class MethodSpec:
    """One method: the pieces it trains, how it is prompted, and how reports show it."""

    name: str
    """The name in configs, run directories (``train/{name}-seed{seed}``) and reports."""
    label: str
    """Display name in tables and plots."""
    colour: str
    """Plot colour (Okabe-Ito, colour-blind safe)."""
    prompt_encoder: bool = False
    """Trainable virtual tokens (P-Tuning) prepended to the input embeddings."""
    adversary: bool = False
    """Domain classifier behind the gradient reversal layer; needs target questions."""
    answer_only: bool = False
    """Target ``" {answer} END"`` instead of ``" {rationale} --> {answer} END"``."""
    trained: bool = True
    """False for a baseline that evaluates the untrained base model (no seed, no training)."""

    @property
    def prompt_style(self) -> PromptStyle:
        """The evaluation prompt style of this method's models."""
        if not self.trained:
            return ZERO_SHOT_STYLE
        return ANSWER_ONLY_STYLE if self.answer_only else STUDENT_STYLE


FT = MethodSpec("ft", "FT (answer only)", "#999933", answer_only=True)
FT_COT = MethodSpec("ft_cot", "FT-CoT", "#0072B2")
PTUNING_COT = MethodSpec("ptuning_cot", "P-Tuning-CoT", "#CC79A7", prompt_encoder=True)
DANN_COT = MethodSpec("dann_cot", "DANN-CoT", "#E69F00", adversary=True)
PRADA = MethodSpec("prada", "PRADA", "#D55E00", prompt_encoder=True, adversary=True)
ZERO_SHOT_COT = MethodSpec(ZERO_SHOT_STYLE, "Zero-Shot-CoT (untrained base)", "#7f7f7f", trained=False)
"""The untrained base model prompted with Zero-Shot-CoT: named after its prompt (``prada.formats``)."""

METHOD_SPECS: dict[str, MethodSpec] = {s.name: s for s in (FT, FT_COT, PTUNING_COT, DANN_COT, PRADA)}
"""The training methods, in report order."""
METHODS: tuple[str, ...] = tuple(METHOD_SPECS)
"""Training methods. ``ft``: answer only; ``ft_cot``: Fine-tune-CoT; ``ptuning_cot``: + prompt
encoder; ``dann_cot``: + domain adversary; ``prada``: prompt encoder + domain adversary."""
BASELINE_SPECS: dict[str, MethodSpec] = {s.name: s for s in (ZERO_SHOT_COT,)}
"""Untrained-model evaluations (no seed), listed before the trained methods."""
BASELINE_METHODS: tuple[str, ...] = tuple(BASELINE_SPECS)
ZERO_SHOT_MODEL = ZERO_SHOT_COT.name
"""The model name of the untrained base model's evaluations (``eval/zero_shot_cot/...``)."""

BASE_METHOD = FT_COT.name
"""The 'without PRADA' side of the PRADA comparisons (headline table, band, t-SNE)."""
ADV_METHOD = PRADA.name
"""The method the reports compare with its baseline and its ablations."""
ABLATION_BASELINES: tuple[str, ...] = tuple(
    s.name for s in METHOD_SPECS.values() if not s.answer_only and s is not PRADA
)
"""PRADA is also compared with each of its ablations present: without the adversary
(P-Tuning-CoT) and without the prompt encoder (DANN-CoT); FT-CoT lacks both."""
REFERENCE_PREFERENCE: tuple[str, ...] = (FT_COT.name, PTUNING_COT.name, FT.name, DANN_COT.name, *BASELINE_METHODS)
"""Which method a feature plot shows beside PRADA, first present wins."""


def method_spec(method: str) -> MethodSpec:
    """The spec of a training method; ``TrainingError`` listing the valid names otherwise."""
    try:
        return METHOD_SPECS[method]
    except KeyError:
        close = difflib.get_close_matches(method, METHODS, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise TrainingError(f"unknown method '{method}'{hint}; valid methods: {list(METHODS)}") from None


def any_spec(method: str) -> MethodSpec | None:
    """The spec of a training method or a baseline, None for a name the registry does not hold
    (reports show such a model under its own name)."""
    return METHOD_SPECS.get(method) or BASELINE_SPECS.get(method)
