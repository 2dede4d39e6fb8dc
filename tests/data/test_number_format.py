"""Gold answers are read exactly (signs, leading-dot decimals, fractions, scientific notation,
thousands separators vs a decimal comma) or refused with the reason; a model's output keeps the
Zero-Shot-CoT reading. Property-based over number formats, plus the cases of the rule table."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prada.config import CustomTaskConfig
from prada.data.answers import extract_student_answer, is_correct, normalise_answer
from prada.data.custom import load_custom_examples
from prada.data.number_format import MINUS_SIGNS, NumberFormatError, canonical_number, parse_exact_number
from prada.errors import DataError


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("5", 5), ("+5", 5), ("-5", -5), ("\u22125", -5), ("\u20135", -5), ("\uff0d5", -5),
        (".5", Fraction(1, 2)), ("-.25", Fraction(-1, 4)), ("5.", 5), ("007", 7), (" 42 ", 42),
        ("1/2", Fraction(1, 2)), ("\u22123/4", Fraction(-3, 4)),
        ("1e3", 1000), ("2.5E-3", Fraction(1, 400)), ("-1e+6", -10**6), ("1e\u22122", Fraction(1, 100)),
        ("1,000", 1000), ("12,345,678.9", Fraction(123456789, 10)), ("1,000.", 1000),
        ("1,5", Fraction(3, 2)), ("3,14", Fraction(157, 50)), ("0,5", Fraction(1, 2)), ("2,0625", Fraction(33, 16)),
        ("$1,234.50", Fraction(2469, 2)), ("-$5", -5), ("$-5", -5),
    ],
)
def test_the_rule_table(text, value):
    assert parse_exact_number(text) == value


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("0x10", "hexadecimal"), ("0b101", "hexadecimal"), ("1_000", "underscores"), ("50%", "percentage"),
        ("inf", "not a finite number"), ("nan", "not a finite number"), ("1/0", "division by zero"),
        ("0,500", "ambiguous commas"), ("1.000,5", "ambiguous commas"), ("1,23,456", "ambiguous commas"),
        ("1 1/2", "more than one number"), ("3 or 4", "more than one number"), ("five", "characters other"),
        ("", "no digits"), ("$$5", r"more than one '\$'"), ("--5", "not one of the forms"), ("1.5.2", "not one of"),
        ("1e999", "exponent beyond"), ("\u0663", "characters other"),
    ],
)
def test_what_is_not_one_number_is_refused_with_the_reason(text, reason):
    with pytest.raises(NumberFormatError, match=reason):
        parse_exact_number(text)


def test_a_sign_is_never_lost():
    assert not is_correct("5", "\u22125", "number")
    assert is_correct("-5", "\u22125", "number") and is_correct("\u22125", "\u22125", "number")
    assert not is_correct("5", "-5", "number") and not is_correct("-5", "5", "number")


def test_gold_answers_are_never_rewritten_into_another_number():
    # The cases: each used to become the number on the right of the arrow.
    for gold, wrong, right in ((".5", "5", "0.5"), ("\u22125", "5", "-5"), ("1/2", "1", "0.5"), ("1e3", "1", "1000"),
                               ("1,5", "15", "1.5")):
        assert not is_correct(wrong, gold, "number"), gold
        assert is_correct(right, gold, "number"), gold
    assert not is_correct("0", "0x10", "number") and not is_correct("16", "0x10", "number")


def test_model_outputs_keep_the_zero_shot_cot_reading():
    assert extract_student_answer(" 2 + 3 = 5. --> 1,000 END", "number") == "1000"  # commas dropped
    assert is_correct("12 apples", "12", "number") and is_correct("$1,000.00", "1000", "number")
    assert normalise_answer("1,000.0", "number") == "1000"


def _write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_custom_numeric_answers_are_read_exactly(tmp_path):
    answers = [".5", "\u22125", "1/2", "1e3", "1,5", "1,000", 7, 2.5, "-0"]
    path = _write(tmp_path / "d.jsonl", [{"question": f"q{i}", "answer": a} for i, a in enumerate(answers)])
    examples = load_custom_examples(CustomTaskConfig(name="mine", path=str(path), answer_type="number"))
    assert [e.answer for e in examples] == ["0.5", "-5", "0.5", "1000", "1.5", "1000", "7", "2.5", "0"]


@pytest.mark.parametrize(
    ("record", "fragment"),
    [
        ({"question": "q", "answer": "0x10"}, "d.jsonl:2: answer '0x10' is not a number: hexadecimal"),
        ({"question": "q", "answer": "0,500"}, "d.jsonl:2: answer '0,500' is not a number: ambiguous commas"),
        ({"question": ["what", "is"], "answer": "1"}, "d.jsonl:2: 'question' must be a string, got list"),
        ({"question": "q", "answer": [1, 2]}, "d.jsonl:2: 'answer' must be a string or a number, got list"),
        ({"question": "q", "answer": True}, "'answer' must be a string or a number, got bool"),
        ({"question": "q", "answer": "1", "rationale": {"steps": 1}}, "'rationale' must be a string or null, got dict"),
    ],
)
def test_a_custom_record_of_the_wrong_json_type_or_number_is_refused(tmp_path, record, fragment):
    path = _write(tmp_path / "d.jsonl", [{"question": "ok", "answer": "1"}, record])
    with pytest.raises(DataError) as e:
        load_custom_examples(CustomTaskConfig(name="mine", path=str(path), answer_type="number"))
    assert fragment in str(e.value)


def test_custom_choices_must_be_texts(tmp_path):
    path = _write(tmp_path / "d.jsonl", [{"question": "q", "choices": ["a", ["b"]], "answer": "A"}])
    with pytest.raises(DataError, match=r"'choices\.B' must be a text, got list"):
        load_custom_examples(CustomTaskConfig(name="mine", path=str(path), answer_type="choice"))


# -- property-based: every way of writing a number reads back as that number ----------------------

values = st.one_of(
    st.integers(-10**12, 10**12).map(Fraction),
    st.builds(lambda n, places: Fraction(n, 10**places), st.integers(-10**9, 10**9), st.integers(1, 6)),
)


def _decimal_text(value: Fraction) -> str:
    return canonical_number(abs(value))  # terminating decimals only (the strategy makes no others)


def _with_thousands(text: str) -> str:
    whole, _, frac = text.partition(".")
    grouped = f"{int(whole):,}"
    return grouped + (f".{frac}" if frac else "")


def _renderings(value: Fraction, minus: str, data) -> list[str]:
    magnitude = _decimal_text(value)
    sign = minus if value < 0 else data.draw(st.sampled_from(["", "+"]))
    out = [sign + magnitude, sign + _with_thousands(magnitude), f"{sign}{abs(value).numerator}/{abs(value).denominator}"]
    if magnitude.startswith("0."):
        out.append(sign + magnitude[1:])  # leading dot: .5
    whole, _, frac = magnitude.partition(".")
    if frac and len(frac) != 3 and "," not in whole and int(whole) < 1000:
        out.append(f"{sign}{whole},{frac}")  # decimal comma: 1,5 (a 3-digit tail would be thousands)
    digits = magnitude.replace(".", "").lstrip("0") or "0"
    exponent = len(whole) - len(magnitude.replace(".", "")) if "." in magnitude else 0
    out.append(f"{sign}{digits}e{exponent}" if exponent else f"{sign}{digits}E+0")  # scientific
    return [f" ${t}" if t and t[0] not in "+" + MINUS_SIGNS and data.draw(st.booleans()) else t for t in out]


@settings(max_examples=300, deadline=None)
@given(value=values, minus=st.sampled_from(list(MINUS_SIGNS)), data=st.data())
def test_every_rendering_of_a_number_reads_back_exactly(value, minus, data):
    for text in _renderings(value, minus, data):
        assert parse_exact_number(text) == value, text
        assert is_correct(canonical_number(value), text, "number"), text
        if value != 0:
            assert not is_correct(canonical_number(-value), text, "number"), text  # the sign matters
        assert parse_exact_number(canonical_number(value)) == value
