"""One look for every table and plot: method order, display names and colours.

Method labels and colours come from the method registry (``prada.methods``).
"""

from __future__ import annotations

from prada.methods import (
    ADV_METHOD,
    BASE_METHOD,
    BASELINE_METHODS,
    BASELINE_SPECS,
    METHOD_SPECS,
    METHODS,
)

__all__ = [
    "ADV_METHOD", "BASELINE_METHODS", "BASE_METHOD", "METHOD_COLOURS", "METHOD_LABELS", "SOURCE_COLOUR",
    "TARGET_COLOURS", "method_colour", "method_label", "method_sort_key", "target_colour",
]

METHOD_LABELS = {s.name: s.label for s in (*BASELINE_SPECS.values(), *METHOD_SPECS.values())}
METHOD_COLOURS = {s.name: s.colour for s in (*BASELINE_SPECS.values(), *METHOD_SPECS.values())}
# Colour-blind-safe (Okabe-Ito); PRADA vs FT-CoT is the main contrast: vermillion vs blue.
_EXTRA_COLOURS = ("#009E73", "#56B4E9", "#F0E442", "#000000")

SOURCE_COLOUR = "#404040"
TARGET_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442")


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
