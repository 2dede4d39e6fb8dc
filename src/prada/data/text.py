"""Question text helpers: the ``Answer Choices:`` format and the normalised join key.

>>> format_choices({"A": "550", "B": "570"})
'Answer Choices: (A) 550 (B) 570'
>>> split_choices("How many? Answer Choices: (A) 550 (B) 570")
('How many?', {'A': '550', 'B': '570'})
>>> normalise_question("How  many?\\nAnswer Choices: (A) 2 (B) 1") == normalise_question("how many? Answer Choices: (A) 1 (B) 2")
True
"""

from __future__ import annotations

import re

__all__ = ["format_choices", "split_choices", "normalise_whitespace", "normalise_question"]

_CHOICES_HEADER_RE = re.compile(r"\s*Answer Choices:\s*", re.IGNORECASE)
_CHOICE_RE = re.compile(r"\(([A-Z])\)\s*")
_WHICH_CHOICE_RE = re.compile(r"\s*Which choice is true\s*\?\s*$", re.IGNORECASE)
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "`": "'"})


def format_choices(choices: dict[str, str]) -> str:
    """``Answer Choices: (A) text (B) text ...`` — the Zero-Shot-CoT / Fine-tune-CoT format."""
    return "Answer Choices: " + " ".join(f"({k}) {v}" for k, v in choices.items())


def split_choices(question: str) -> tuple[str, dict[str, str] | None]:
    """Split ``"... Answer Choices: (A) x (B) y"`` into the stem and ``{"A": "x", "B": "y"}``.

    Also reads the ``Answer choices: (A) x, (B) y.`` variant (comma-separated, final period).
    Returns ``(question, None)`` when there is no choices block.
    """
    m = None
    for m in _CHOICES_HEADER_RE.finditer(question):  # noqa: B007 - m is used after the loop
        pass  # the last header wins (a stem could mention the words)
    if m is None:
        return question, None
    stem, block = question[: m.start()], question[m.end():]
    parts = _CHOICE_RE.split(block)
    # parts: [before, letter, text, letter, text, ...]
    if len(parts) < 3 or parts[0].strip():
        return question, None
    choices: dict[str, str] = {}
    for letter, text in zip(parts[1::2], parts[2::2], strict=False):
        choices[letter] = text.strip()
    if "," in block and all(v.endswith(",") for v in list(choices.values())[:-1]):
        choices = {k: v.rstrip(",").strip() for k, v in choices.items()}
        last = list(choices)[-1]
        choices[last] = choices[last].rstrip(".")
    return stem.rstrip(), choices


def normalise_whitespace(text: str) -> str:
    return " ".join(text.split())


def _norm(text: str) -> str:
    return normalise_whitespace(text.translate(_QUOTES)).casefold()


def normalise_question(text: str) -> str:
    """The join key of a question across copies of a dataset.

    Whitespace collapsed, curly quotes straightened, case folded; a multiple-choice block is
    replaced by its option texts (whitespace removed) in sorted order (copies that shuffled the options, as the recorded
    Date Understanding log did, still match), and BIG-bench's ``Which choice is true ?`` lead-in
    before the options is dropped.
    """
    stem, choices = split_choices(text)
    if choices:
        stem = _WHICH_CHOICE_RE.sub("", stem)
    key = _norm(stem)
    if choices:
        # Options compare without any whitespace: Kojima's AQuA format pads parentheses,
        # "(A)  (ay-by) /2" for the original "A)(ay-by)/2".
        options = sorted("".join(_norm(v.rstrip(". ")).split()) for v in choices.values())
        key += " || " + " | ".join(options)
    return key
