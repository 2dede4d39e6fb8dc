"""One look for every table and plot: method order, display names and colours."""

from __future__ import annotations

from prada.config import METHODS

BASELINE_METHODS = ("zero_shot_cot",)
"""Untrained-model evaluations (no seed), listed before the trained methods."""

METHOD_LABELS = {
    "zero_shot_cot": "Zero-Shot-CoT (untrained base)",
    "ft": "FT (answer only)",
    "ft_cot": "FT-CoT",
    "ptuning_cot": "P-Tuning-CoT",
    "dann_cot": "DANN-CoT",
    "prada": "PRADA",
}

# Colour-blind-safe (Okabe-Ito); PRADA vs FT-CoT is the main contrast: vermillion vs blue.
METHOD_COLOURS = {
    "zero_shot_cot": "#7f7f7f",
    "ft": "#999933",
    "ft_cot": "#0072B2",
    "ptuning_cot": "#CC79A7",
    "dann_cot": "#E69F00",
    "prada": "#D55E00",
}
_EXTRA_COLOURS = ("#009E73", "#56B4E9", "#F0E442", "#000000")

SOURCE_COLOUR = "#404040"
TARGET_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442")

BASE_METHOD = "ft_cot"
"""The 'without PRADA' side of the PRADA comparisons (band, t-SNE)."""
ADV_METHOD = "prada"


def method_sort_key(method: str) -> tuple[int, str]:
    order = [*BASELINE_METHODS, *METHODS]
    return (order.index(method), "") if method in order else (len(order), method)


def method_label(method: str) -> str:
    return METHOD_LABELS.get(method, method)


def method_colour(method: str) -> str:
    if method in METHOD_COLOURS:
        return METHOD_COLOURS[method]
    return _EXTRA_COLOURS[sum(map(ord, method)) % len(_EXTRA_COLOURS)]


def target_colour(index: int) -> str:
    return TARGET_COLOURS[index % len(TARGET_COLOURS)]
