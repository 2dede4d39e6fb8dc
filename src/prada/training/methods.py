"""The five training methods as data: which pieces each one uses."""

from __future__ import annotations

from dataclasses import dataclass

from prada.config import METHODS
from prada.errors import TrainingError


@dataclass(frozen=True)
class MethodSpec:
    name: str
    prompt_encoder: bool
    """Trainable virtual tokens (P-Tuning) prepended to the input embeddings."""
    adversary: bool
    """Domain classifier behind the gradient reversal layer; needs target questions."""
    answer_only: bool
    """Target ``" {answer} END"`` instead of ``" {rationale} --> {answer} END"``."""


METHOD_SPECS: dict[str, MethodSpec] = {
    "ft": MethodSpec("ft", prompt_encoder=False, adversary=False, answer_only=True),
    "ft_cot": MethodSpec("ft_cot", prompt_encoder=False, adversary=False, answer_only=False),
    "ptuning_cot": MethodSpec("ptuning_cot", prompt_encoder=True, adversary=False, answer_only=False),
    "dann_cot": MethodSpec("dann_cot", prompt_encoder=False, adversary=True, answer_only=False),
    "prada": MethodSpec("prada", prompt_encoder=True, adversary=True, answer_only=False),
}
assert tuple(METHOD_SPECS) == METHODS  # the registry and the config's list stay in step

BACKBONE_MODES = ("frozen", "lora", "full")


def method_spec(method: str) -> MethodSpec:
    """The spec of ``method``; ``TrainingError`` listing the valid names otherwise."""
    try:
        return METHOD_SPECS[method]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(method, METHODS, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise TrainingError(f"unknown method '{method}'{hint}; valid methods: {list(METHODS)}") from None
