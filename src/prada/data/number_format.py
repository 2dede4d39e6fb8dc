"""Exact reading of a numeric answer written by a person (a dataset's gold answer).

Model outputs are read the Zero-Shot-CoT way (``answers.number_candidates``: commas dropped, the
first ``-?\\d+\\.?\\d*``), which is right for free text and keeps published numbers reproducible. A
gold answer is different: it is one number, and misreading it silently corrupts every accuracy
computed against it. ``parse_exact_number`` reads the whole text as one number, exactly (as a
``Fraction``), or refuses it with the reason. The rules:

- **Sign**: an optional ``+`` or minus: ``-`` (hyphen-minus), ``−`` (U+2212 minus sign), ``–``
  (U+2013 en dash), ``﹣`` (U+FE63) or ``－`` (U+FF0D). An optional ``$`` before or after it.
- **Digits** are ASCII ``0-9`` only.
- **A dot is always the decimal point**: ``2.5``, ``.5`` (leading dot), ``5.`` (trailing dot, as in
  a sentence).
- **Commas**: groups of exactly three digits after a first group of 1-3 digits that does not
  start with 0 are thousands separators (``1,000``, ``12,345,678.9``); a single comma followed by
  1, 2 or 4+ digits, in a number without a dot, is a decimal comma (``1,5`` is 1.5, ``3,14`` is
  3.14). Anything else with a comma is ambiguous and refused (``0,500``: 0.5 or 500?;
  ``1.000,5``; ``1,23,456``).
- **Scientific notation**: ``1e3``, ``2.5E-3``, ``-1e+6`` (exponent at most ±308, as a float).
- **Fractions**: ``1/2``, ``-3/4`` (integers, non-zero denominator).
- Refused with the reason: anything else, e.g. ``0x10``, ``1_000``, ``50%``, ``inf``, ``nan``,
  ``1 1/2``, ``3 or 4``, ``five``.

>>> parse_exact_number("−5"), parse_exact_number(".5"), parse_exact_number("1/2")
(Fraction(-5, 1), Fraction(1, 2), Fraction(1, 2))
>>> parse_exact_number("1e3"), parse_exact_number("1,000"), parse_exact_number("1,5")
(Fraction(1000, 1), Fraction(1000, 1), Fraction(3, 2))
>>> parse_exact_number("0x10")
Traceback (most recent call last):
...
prada.data.number_format.NumberFormatError: '0x10' is not a number: hexadecimal and other prefixed forms are not read
>>> canonical_number(parse_exact_number("$1,234.50")), canonical_number(parse_exact_number("-1/8"))
('1234.5', '-0.125')
"""

from __future__ import annotations

import re
from fractions import Fraction

__all__ = ["MINUS_SIGNS", "NumberFormatError", "canonical_number", "parse_exact_number"]

MINUS_SIGNS = "-\u2212\u2013\ufe63\uff0d"
"""Characters read as a minus sign: hyphen-minus, minus sign, en dash, small and fullwidth
hyphen-minus."""

MAX_EXPONENT = 308
"""Largest |exponent| of scientific notation (the float range); larger is refused, not expanded."""


class NumberFormatError(ValueError):
    """A text that is not exactly one number; the message says why."""


_SIGN = "(?P<sign>[" + re.escape("+" + MINUS_SIGNS) + "])?"  # escaped: "+-" would be a range
_BODY = re.compile(
    r"(?P<grouped>[1-9][0-9]{0,2}(?:,[0-9]{3})+)(?:\.(?P<grouped_frac>[0-9]*))?"  # 1,000 / 1,000.5
    r"|(?P<comma_int>[0-9]+),(?P<comma_frac>[0-9]{1,2}|[0-9]{4,})"  # decimal comma: 1,5 / 3,14
    r"|(?P<num>[0-9]+)/(?P<den>[0-9]+)"  # fraction: 1/2
    r"|(?P<mantissa>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE](?P<exp>[+\-\u2212]?[0-9]+))?"  # 2.5 / .5 / 1e3
)
_NUMBER = re.compile(rf"\$?{_SIGN}\$?(?P<body>.*)", re.DOTALL)


def parse_exact_number(text: str) -> Fraction:
    """The number ``text`` writes, exactly; ``NumberFormatError`` saying why when it is not one.

    See the module docstring for the rules (signs, decimal dot and comma, thousands separators,
    scientific notation, fractions).
    """
    if not isinstance(text, str):
        raise NumberFormatError(f"{text!r} is not text")
    stripped = text.strip()
    head = _NUMBER.fullmatch(stripped)
    body_text = head.group("body") if head else stripped
    if stripped.count("$") > 1:
        raise NumberFormatError(f"{text!r} is not a number: more than one '$'")
    if not body_text:
        raise NumberFormatError(f"{text!r} is not a number: no digits")
    body = _BODY.fullmatch(body_text)
    if body is None:
        raise NumberFormatError(f"{text!r} is not a number: {_why_not(body_text)}")
    value = _value(body, text)
    sign = head.group("sign") if head is not None else None
    return -value if sign and sign != "+" else value


def _value(m: re.Match[str], text: str) -> Fraction:
    if m.group("grouped"):
        return Fraction(m.group("grouped").replace(",", "") + "." + (m.group("grouped_frac") or "0"))
    if m.group("comma_int"):
        return Fraction(f"{m.group('comma_int')}.{m.group('comma_frac')}")
    if m.group("den"):
        if int(m.group("den")) == 0:
            raise NumberFormatError(f"{text!r} is not a number: division by zero")
        return Fraction(int(m.group("num")), int(m.group("den")))
    mantissa = m.group("mantissa")
    mantissa = mantissa + "0" if mantissa.endswith(".") else mantissa
    value = Fraction(mantissa)
    if m.group("exp"):
        exponent = int(m.group("exp").replace("\u2212", "-"))
        if abs(exponent) > MAX_EXPONENT:
            raise NumberFormatError(f"{text!r} is not a number prada reads: exponent beyond ±{MAX_EXPONENT}")
        value *= Fraction(10) ** exponent
    return value


def _why_not(body: str) -> str:
    """The most likely reason ``body`` (sign and ``$`` removed) is refused."""
    lowered = body.lower()
    if re.fullmatch(r"0[xob][0-9a-f_]*", lowered):
        return "hexadecimal and other prefixed forms are not read"
    if lowered in ("inf", "infinity", "nan"):
        return "not a finite number"
    if body.endswith("%"):
        return "a percentage is ambiguous: write 50 or 0.5"
    if "_" in body:
        return "underscores are not digit separators here: write 1000 or 1,000"
    if "," in body:
        return ("ambiguous commas: use a dot for decimals (0.5) and commas only between groups of three "
                "digits (1,000)")
    if re.search(r"\s", body):
        return "more than one number, or words around it"
    if re.search(r"[^0-9.,/eE+\-]", body):
        return "it has characters other than digits, a sign, '.', ',', '/' or an exponent"
    return "not one of the forms 1000, -2.5, .5, 1,000, 1,5, 1e3, 1/2"


def canonical_number(value: Fraction) -> str:
    """The text a gold answer is stored as: an integer (``"1000"``), an exact decimal when the value
    has one (``"0.125"``), else the shortest float text (``"0.3333333333333333"``).

    >>> canonical_number(Fraction(-0)), canonical_number(Fraction(5, 2)), canonical_number(Fraction(1, 3))
    ('0', '2.5', '0.3333333333333333')
    """
    if value.denominator == 1:
        return str(value.numerator)
    denominator, twos, fives = value.denominator, 0, 0
    while denominator % 2 == 0:
        denominator, twos = denominator // 2, twos + 1
    while denominator % 5 == 0:
        denominator, fives = denominator // 5, fives + 1
    if denominator != 1:  # no finite decimal expansion
        try:
            return repr(float(value))
        except OverflowError:
            return f"{value.numerator}/{value.denominator}"
    places = max(twos, fives)  # >= 1: the denominator is not 1
    digits = str((abs(value) * 10**places).numerator).rjust(places + 1, "0")  # an integer once scaled
    sign = "-" if value < 0 else ""
    return f"{sign}{digits[:-places]}.{digits[-places:].rstrip('0')}"
