"""Letter extraction from a whole rationale finds exactly what the published single MULTILINE
pattern found, without its quadratic scan (timing: benchmarks/bench_answer_extraction.py)."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from prada.data.answers import choice_candidates, extract_student_answer, number_candidates, yes_no_candidates

# The pattern prada used before: quadratic in newlines (10.8 s on 32k of them), kept as the reference.
PUBLISHED = r"\(({L})\)|\banswer\s+is:?\s*\(?({L})\b|^\s*\(?({L})\)?\s*[.:]?\s*$"


def published_choice_candidates(text: str, letters: str) -> list[str]:
    pattern = re.compile(PUBLISHED.format(L=f"[{letters}]"), re.MULTILINE)
    return [next(g for g in m.groups() if g) for m in pattern.finditer(text)]


PIECES = ["A", "B", "C", "D", "(", ")", "\n", " ", "\t", "\r", ":", ".", "x", "answer is ", "answer ",
          "theanswer is ", "_answer is ", "answer\n is ", "is "]


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=16).map("".join))
def test_the_letters_found_are_the_published_patterns(text):
    assert choice_candidates(text, "ABC", whole_text=True) == published_choice_candidates(text, "ABC")


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from(["yes", "no", "Yes", "nope", " ", "\n", ".", ",", ":", '"', "'", "x", "-", "5",
                                 "1,000", "3.", "-4.5"]), max_size=14).map("".join))
def test_yes_no_and_number_candidates_are_kojimas(text):
    words = [w for w in re.sub(r"[\"'\n.\s:,]", " ", text.lower()).split(" ") if w in ("yes", "no")]
    assert yes_no_candidates(text) == words
    numbers = [s[:-1] if s.endswith(".") else s for s in re.findall(r"-?\d+\.?\d*", text.replace(",", ""))]
    assert number_candidates(text) == [s for s in numbers if s and s != "-"]


def test_a_letter_after_32k_newlines_is_found():
    assert extract_student_answer("\n" * 32768 + "B", "choice") == "B"
    assert extract_student_answer("The answer is (C)." + "\n" * 32768 + "x", "choice") == "C"
    assert extract_student_answer("A" + " " * 32768 + "x", "choice") is None
