"""Answer extraction: Zero-Shot-CoT cleansing, Fine-tune-CoT student format, comparison.
Property tests: no extractor ever raises, and format -> extract round-trips."""

from __future__ import annotations

import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prada.data.answers import (
    CANDIDATE_EXTRACTORS,
    extract_student_answer,
    extract_teacher_answer,
    is_correct,
    normalise_answer,
    parse_number,
)
from prada.data.example import AnswerType
from prada.formats import format_target  # the student's own format: the one production trains on

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ALL_TYPES = list(AnswerType)


# ------------------------------------------------------------------ teacher (Zero-Shot-CoT stage 2)


@pytest.mark.parametrize(
    ("text", "answer_type", "letters", "expected"),
    [
        ("Therefore, the answer (arabic numerals) is 1,000.", "number", None, "1000"),
        ("Therefore, the answer (arabic numerals) is \n\n1792", "number", None, "1792"),
        ("Therefore, the answer (arabic numerals) is:\n\n0.7 light-years", "number", None, "0.7"),
        ("Therefore, the answer (arabic numerals) is -3.", "number", None, "-3"),
        ("Therefore, the answer (arabic numerals) is 4 and then 5.", "number", None, "4"),  # first
        ("Therefore, the answer (arabic numerals) is unknown.", "number", None, None),
        ("Therefore, among A through E, the answer is D.", "choice", "ABCDE", "D"),
        ("Therefore, among A through E, the answer is probably (A), (B), or (D).", "choice", "ABCDE", "A"),
        ("Therefore, among A through F, the answer is (F) 05/01/2021.", "choice", "ABCDEF", "F"),
        ("Therefore, among A through C, the answer is D.", "choice", "ABC", None),
        ("Therefore, the answer (Yes or No) is No.", "yes_no", None, "no"),
        ("Therefore, the answer (Yes or No) is:\n\nYes", "yes_no", None, "yes"),
        ("Therefore, the answer (Yes or No) is moot.", "yes_no", None, None),
        ('Therefore, the answer is "fnenl".', "string", None, "fnenl"),
        ("Therefore, the answer is n k.", "string", None, "nk"),
        ("", "number", None, None),
    ],
)
def test_teacher_cleansing(text, answer_type, letters, expected):
    assert extract_teacher_answer(text, answer_type, letters) == expected


def test_trigger_words_are_not_candidates():
    # "(Yes or No)" and "among A through E" belong to the trigger, never to the answer.
    assert extract_teacher_answer("Therefore, the answer (Yes or No) is", "yes_no") is None
    assert extract_teacher_answer("Therefore, among A through E, the answer is", "choice") is None


# ------------------------------------------------------------------ student (Fine-tune-CoT)


@pytest.mark.parametrize(
    ("completion", "answer_type", "expected"),
    [
        (" 32 + 42 = 74. 74 - 35 = 39. --> 39 END", "number", "39"),
        (" 5 apples --> 39 and 40 END 12", "number", "39"),  # first after -->, stop at END
        (" 32 + 42 = 74. 74 - 35 = 39.", "number", "39"),  # no -->: last candidate
        (" The answer is (C). --> C END", "choice", "C"),
        (" A coin is heads up, so the answer is (B).", "choice", "B"),  # explicit form only
        (" A coin is heads up. Bob flips it.", "choice", None),  # bare capitals are not answers
        (" Bob flips it, so it is tails up. --> no END", "yes_no", "no"),
        (' The last letter of "Elon" is "n". --> nk END', "string", "nk"),
        (' The last letters are "n" and "k", so "nk".', "string", "nk"),
        (" --> END", "number", None),
    ],
)
def test_student_extraction(completion, answer_type, expected):
    assert extract_student_answer(completion, answer_type) == expected


def test_student_answer_only_takes_first_candidate():
    assert extract_student_answer(" 12 END 13", "number", answer_only=True) == "12"
    assert extract_student_answer(" B END", "choice", "ABCDE", answer_only=True) == "B"


# ------------------------------------------------------------------ comparison


@pytest.mark.parametrize(
    ("pred", "gold", "answer_type", "expected"),
    [
        ("1,000", "1000", "number", True),
        ("$1000.00", "1000", "number", True),
        ("43.0", "43", "number", True),
        ("12 apples", "12", "number", True),
        ("0.6666666666666667", "0.6666666666666666", "number", True),
        ("0.667", "0.6666666666666666", "number", False),
        ("(b)", "B", "choice", True),
        ("C", "B", "choice", False),
        ("Yes", "yes", "yes_no", True),
        ('"NK".', "nk", "string", True),
        (None, "1", "number", False),
    ],
)
def test_is_correct(pred, gold, answer_type, expected):
    assert is_correct(pred, gold, answer_type) is expected


def test_strict_is_the_published_string_match():
    assert is_correct("43.0", "43", "number", strict=True) is False
    assert is_correct("43", "43", "number", strict=True) is True


def test_parse_and_normalise():
    assert parse_number("-$1,234.50 total") == -1234.5
    assert parse_number("no digits") is None
    assert normalise_answer("1,000.0", "number") == "1000"
    assert normalise_answer("(c).", "choice") == "C"


# ------------------------------------------------------------------ properties

texts = st.text(max_size=300)
letter_sets = st.one_of(st.none(), st.text(alphabet=string.ascii_letters + "()-,", max_size=8))


@FAST
@given(text=texts, answer_type=st.sampled_from(ALL_TYPES), letters=letter_sets)
def test_extractors_never_raise(text, answer_type, letters):
    for result in (
        extract_teacher_answer(text, answer_type, letters),
        extract_student_answer(text, answer_type, letters),
        extract_student_answer(text, answer_type, letters, answer_only=True),
    ):
        assert result is None or isinstance(result, str)
    assert isinstance(is_correct(text, text, answer_type), bool)
    for name, extractor in CANDIDATE_EXTRACTORS.items():
        assert isinstance(extractor(text, "ABCDE", whole_text=True), list), name
        assert isinstance(extractor(text, "ABCDE", whole_text=False), list), name


# A rationale the student could write: any text without the format's markers.
rationales = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200
).filter(lambda s: "-->" not in s and "END" not in s)
numbers = st.one_of(
    st.integers(min_value=-10**9, max_value=10**9).map(str),
    st.decimals(min_value=-10**6, max_value=10**6, places=3, allow_nan=False).map(str),
)
words = st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=8)


@FAST
@given(rationale=rationales, answer=numbers)
def test_round_trip_numbers(rationale, answer):
    completion = format_target(answer, rationale)
    assert is_correct(extract_student_answer(completion, "number"), answer, "number")


@FAST
@given(rationale=rationales, answer=st.sampled_from("ABCDE"))
def test_round_trip_letters(rationale, answer):
    completion = format_target(answer, rationale)
    assert extract_student_answer(completion, "choice", "ABCDE") == answer


@FAST
@given(rationale=rationales, answer=st.sampled_from(["yes", "no"]))
def test_round_trip_yes_no(rationale, answer):
    completion = format_target(answer, rationale)
    assert extract_student_answer(completion, "yes_no") == answer


@FAST
@given(rationale=rationales, answer=words)
def test_round_trip_strings(rationale, answer):
    completion = format_target(answer, rationale)
    assert extract_student_answer(completion, "string") == answer


@FAST
@given(answer=numbers)
def test_round_trip_answer_only(answer):
    completion = format_target(answer, answer_only=True)
    assert is_correct(extract_student_answer(completion, "number", answer_only=True), answer, "number")


@FAST
@given(answer=numbers)
def test_round_trip_teacher_numbers(answer):
    text = f"Therefore, the answer (arabic numerals) is {answer}."
    assert is_correct(extract_teacher_answer(text, "number"), answer, "number")
