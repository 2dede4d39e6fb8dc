"""Answer extraction and comparison, per answer type.

Two extraction pipelines, each a small named function per answer type held in a registry:

- **Teacher (Zero-Shot-CoT stage 2, Kojima et al. 2022).** The stage-2 output (``answer_completion``,
  which may start with the trigger itself) is cut after the trigger, the candidates of the answer
  type are collected, and the **first** one is the answer.
- **Student (Fine-tune-CoT, Ho et al. 2023).** A completion ``" {rationale} --> {answer} END"``:
  the first candidate after ``-->``; without ``-->``, the **last** candidate of the whole text (a
  letter is then only taken from an explicit ``(B)`` / ``answer is B`` form, never a bare capital).
  The answer-only format ``" {answer} END"`` takes the first candidate.

Extraction never raises: any text gives a string or ``None`` ("no answer").

>>> extract_teacher_answer("Therefore, the answer (arabic numerals) is 1,000.", "number")
'1000'
>>> extract_student_answer(" 3 + 4 = 7. --> 7 END", "number")
'7'
>>> is_correct("$1,000.00", "1000", "number"), is_correct("5", "−5", "number")
(True, False)

Gold answers are read exactly (``prada.data.number_format``: signs including the Unicode minus,
``.5``, ``1/2``, ``1e3``, thousands separators vs a decimal comma); a model's output is read the
Zero-Shot-CoT way (commas dropped, the first number), unless it is exactly one number.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Protocol

from prada.data.example import AnswerType
from prada.data.number_format import NumberFormatError, canonical_number, parse_exact_number
from prada.formats import COT_SEPARATOR, END_MARKER

__all__ = [
    "ANSWER_ONLY_SEPARATOR",
    "COT_SEPARATOR",
    "END_MARKER",
    "CANDIDATE_EXTRACTORS",
    "extract_teacher_answer",
    "extract_student_answer",
    "is_correct",
    "normalise_answer",
    "parse_exact_number",
    "parse_gold_number",
    "parse_number",
    "read_number",
    "strip_trigger",
]

ANSWER_ONLY_SEPARATOR = ""
NUMBER_TOLERANCE = Fraction(1, 10**6)

# Kojima's -?\d+\.?\d*, written as two branches: the same matches, but a pattern that starts with
# literals lets the regex engine skip to a digit or "-" instead of trying every position.
_NUMBER_RE = re.compile(r"-\d+\.?\d*|\d+\.?\d*")
# The Zero-Shot-CoT triggers all read "Therefore, [among X through Y, ]the answer[ (...)] is".
_TRIGGER_RE = re.compile(
    r"^\s*Therefore,\s*(?:among\s+[A-Z]\s+through\s+[A-Z],\s*)?the\s+answer\s*(?:\([^)]*\))?\s*is",
    re.IGNORECASE,
)
# Kojima splits on quotes/newlines/periods/spaces/colons/commas and keeps the words yes/no: the
# same words as a "yes"/"no" between two such separators (or the text's ends), found directly.
_YES_NO_WORD_RE = re.compile(r"(?<![^\"'.:,\s])(?:yes|no)(?![^\"'.:,\s])")
_STRING_DROP_RE = re.compile(r"[\"'\n.\s]")
DEFAULT_LETTERS = "ABCDE"


def _coerce_type(answer_type: AnswerType | str) -> AnswerType:
    return answer_type if isinstance(answer_type, AnswerType) else AnswerType(str(answer_type))


def _letters(choices_letters: Sequence[str] | str | None) -> str:
    """``"ABCDE"`` by default; otherwise the given letters (A-Z only), in order, de-duplicated."""
    if not choices_letters:
        return DEFAULT_LETTERS
    seen: list[str] = []
    for c in "".join(choices_letters):
        c = c.upper()
        if "A" <= c <= "Z" and c not in seen:
            seen.append(c)
    return "".join(seen) or DEFAULT_LETTERS


# --------------------------------------------------------------------------------------------
# Candidates: one small function per answer type (the registry below)
# --------------------------------------------------------------------------------------------


class CandidateExtractor(Protocol):
    def __call__(self, text: str, letters: str, *, whole_text: bool) -> list[str]: ...


def number_candidates(text: str, letters: str = "", *, whole_text: bool = False) -> list[str]:
    """Kojima: remove commas, then every ``-?\\d+\\.?\\d*``, a trailing ``.`` dropped."""
    out = []
    for s in _NUMBER_RE.findall(text.replace(",", "")):
        s = s[:-1] if s.endswith(".") else s
        if s and s != "-":
            out.append(s)
    return out


def choice_candidates(text: str, letters: str = DEFAULT_LETTERS, *, whole_text: bool = False) -> list[str]:
    """Kojima: every capital letter among ``letters`` (safe on a short stage-2 answer only).

    On a whole rationale (``whole_text``) only explicit forms count: ``(B)``, ``answer is B``, or a
    line that is just the letter (``B``, ``(B).``), in reading order. Linear time in the length of
    the text, however many newlines or spaces it holds (see ``_explicit_letter_patterns``).
    """
    if not whole_text:
        return re.findall(f"[{letters}]", text)
    inline, letter_line, both = _explicit_letter_patterns(letters)
    # "\n" + text: the first line is found like the others.
    if inline.search(text) is None:  # the common case: letter-only lines at most
        return letter_line.findall("\n" + text)
    return [a or b or c for a, b, c in both.findall("\n" + text)]


@functools.lru_cache(maxsize=32)
def _explicit_letter_patterns(letters: str) -> tuple[re.Pattern[str], ...]:
    """(inline forms, letter-only lines, both) for ``letters``; the line patterns read ``"\\n" + text``.

    A letter-only line is matched from the newline before it, not with a MULTILINE ``^``: a pattern
    that starts with literals lets the regex engine skip ahead to a ``(``, an ``answer`` or a newline,
    and with ``^\\s*`` every line start scanned all the newlines after it (10.8 s on 32k newlines).
    Whitespace inside a line is ``[^\\S\\n]`` (never a newline), with one optional ``.`` or ``:``
    between two runs of it, so nothing backtracks quadratically. ``both`` finds, in one left-to-right
    pass, exactly what the published single pattern ``\\((L)\\)|\\banswer\\s+is:?\\s*\\(?(L)\\b|^\\s*\\(?(L)
    \\)?\\s*[.:]?\\s*$`` (MULTILINE) found: a test compares them on random texts.
    """
    letter = f"([{letters}])"
    inline = rf"\({letter}\)|answer(?<!\wanswer)\s+is:?\s*\(?{letter}\b"
    letter_line = rf"\n[^\S\n]*\(?{letter}\)?[^\S\n]*(?:[.:][^\S\n]*)?(?=\n|\Z)"
    return re.compile(inline), re.compile(letter_line), re.compile(f"{inline}|{letter_line}")


def yes_no_candidates(text: str, letters: str = "", *, whole_text: bool = False) -> list[str]:
    """Kojima: lower-case, split on quotes/newlines/periods/spaces/colons/commas, keep yes/no."""
    return _YES_NO_WORD_RE.findall(text.lower())


def string_candidates(text: str, letters: str = "", *, whole_text: bool = False) -> list[str]:
    """Kojima (last letters): drop quotes, newlines, periods and spaces; the whole rest is the answer.

    On a whole rationale the candidates are the quoted strings (``"nk"``), else the words.
    """
    if whole_text:
        quoted = re.findall(r"\"([^\"\n]*)\"", text)
        words = [_STRING_DROP_RE.sub("", q) for q in quoted] or [
            _STRING_DROP_RE.sub("", w) for w in text.split()
        ]
        return [w for w in words if w]
    s = _STRING_DROP_RE.sub("", text)
    return [s] if s else []


CANDIDATE_EXTRACTORS: dict[AnswerType, Callable[..., list[str]]] = {
    AnswerType.NUMBER: number_candidates,
    AnswerType.CHOICE: choice_candidates,
    AnswerType.YES_NO: yes_no_candidates,
    AnswerType.STRING: string_candidates,
}


def candidates(
    text: str, answer_type: AnswerType | str, choices_letters: Sequence[str] | str | None = None,
    *, whole_text: bool = False,
) -> list[str]:
    """All answer candidates of ``text`` for ``answer_type``, in reading order."""
    extractor = CANDIDATE_EXTRACTORS[_coerce_type(answer_type)]
    return extractor(text, _letters(choices_letters), whole_text=whole_text)


# --------------------------------------------------------------------------------------------
# Pipelines
# --------------------------------------------------------------------------------------------


def strip_trigger(text: str) -> str:
    """Remove a leading Zero-Shot-CoT answer trigger (``Therefore, ... the answer ... is``)."""
    m = _TRIGGER_RE.match(text)
    return text[m.end():] if m else text


def extract_teacher_answer(
    answer_completion: str, answer_type: AnswerType | str,
    choices_letters: Sequence[str] | str | None = None,
) -> str | None:
    """Zero-Shot-CoT stage-2 cleansing: the first candidate after the trigger, or ``None``.

    >>> extract_teacher_answer("Therefore, among A through E, the answer is (C).", "choice")
    'C'
    >>> extract_teacher_answer('Therefore, the answer is "nk".', "string")
    'nk'
    >>> extract_teacher_answer("Therefore, the answer (Yes or No) is: Yes", "yes_no")
    'yes'
    """
    try:
        if not isinstance(answer_completion, str):
            return None
        found = candidates(strip_trigger(answer_completion), answer_type, choices_letters)
        return found[0] if found else None
    except Exception:  # noqa: BLE001 - extraction must never raise on model output
        return None


_END_RE = re.compile(rf"{END_MARKER}\b")


def _before_end(text: str) -> str:
    """The completion up to its first ``END`` marker (generation may run on past it)."""
    m = _END_RE.search(text)  # the first END; one whitespace before it goes too (as \s?END\b)
    if m is None:
        return text
    start = m.start()
    return text[: start - 1] if start > 0 and text[start - 1].isspace() else text[:start]


def extract_student_answer(
    completion: str, answer_type: AnswerType | str,
    choices_letters: Sequence[str] | str | None = None, *, answer_only: bool = False,
) -> str | None:
    """Fine-tune-CoT: first candidate after ``-->``, else the last candidate of the whole text.

    ``answer_only`` (the ``" {answer} END"`` format): the first candidate of the text.

    >>> extract_student_answer(' The last letter of "Elon" is "n". --> nk END', "string")
    'nk'
    >>> extract_student_answer("He has 3 + 4 = 7 apples.", "number")
    '7'
    >>> extract_student_answer(" 12 END", "number", answer_only=True)
    '12'
    """
    try:
        if not isinstance(completion, str):
            return None
        text = completion
        if answer_only:
            found = candidates(_before_end(text), answer_type, choices_letters)
            return found[0] if found else None
        if COT_SEPARATOR in text:
            tail = _before_end(text.split(COT_SEPARATOR, 1)[1])
            found = candidates(tail, answer_type, choices_letters)
            if found:
                return found[0]
        found = candidates(_before_end(text), answer_type, choices_letters, whole_text=True)
        return found[-1] if found else None
    except Exception:  # noqa: BLE001 - extraction must never raise on model output
        return None


# --------------------------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------------------------


def parse_number(text: str | None) -> float | None:
    """The first number of ``text`` the Zero-Shot-CoT way (commas, ``$`` and units ignored);
    ``None`` if none. For model outputs; a gold answer is read with ``parse_gold_number``.

    >>> parse_number("$1,234.50 dollars"), parse_number("7.0"), parse_number("none")
    (1234.5, 7.0, None)
    """
    if text is None:
        return None
    found = number_candidates(str(text).replace("$", ""))
    if not found:
        return None
    try:
        value = float(found[0])
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def read_number(text: str | None) -> Fraction | None:
    """A model's numeric answer: exactly, when ``text`` is one number (``"−5"``, ``"1/2"``,
    ``"1e3"``, ``"$1,000.00"``); else the first number the Zero-Shot-CoT way; else ``None``.

    Extracted predictions (``-?\\d+\\.?\\d*``) read the same both ways, so published accuracies do not
    move; a raw text such as ``"7 apples"`` still gives 7.

    >>> read_number("−5"), read_number("7 apples"), read_number("no idea")
    (Fraction(-5, 1), Fraction(7, 1), None)
    """
    if text is None:
        return None
    try:
        return parse_exact_number(str(text))
    except NumberFormatError:
        pass
    found = number_candidates(str(text).replace("$", ""))
    return Fraction(found[0]) if found else None


def parse_gold_number(text: str) -> Fraction:
    """A gold answer, read exactly; ``NumberFormatError`` saying why it is not one number.

    >>> parse_gold_number("−5"), parse_gold_number(".5"), parse_gold_number("1,5")
    (Fraction(-5, 1), Fraction(1, 2), Fraction(3, 2))
    """
    return parse_exact_number(text)


def normalise_answer(answer: str | None, answer_type: AnswerType | str) -> str | None:
    """Canonical form of an answer: ``"1000"`` (numbers: ``read_number``, then an integer or an
    exact decimal), ``"B"``, ``"yes"``, ``"nk"`` (strings: lower-case, quotes/spaces/periods
    dropped)."""
    if answer is None:
        return None
    t = _coerce_type(answer_type)
    s = str(answer).strip()
    if t is AnswerType.NUMBER:
        value = read_number(s)
        return None if value is None else canonical_number(value)
    if t is AnswerType.CHOICE:
        s = s.strip("() .:").upper()
        return s or None
    if t is AnswerType.YES_NO:
        s = s.strip(" .:!\"'").lower()
        return s or None
    s = _STRING_DROP_RE.sub("", s).lower()
    return s or None


def is_correct(
    prediction: str | None, gold: str, answer_type: AnswerType | str, *, strict: bool = False
) -> bool:
    """Is ``prediction`` the gold answer? Numbers compare numerically (|Δ| ≤ 1e-6, exact
    arithmetic): the gold read exactly (``parse_gold_number``), the prediction by ``read_number``.

    ``strict=True`` is the published Zero-Shot-CoT comparison: exact string equality.

    >>> is_correct("43.0", "43", "number"), is_correct("43.0", "43", "number", strict=True)
    (True, False)
    >>> is_correct("(b)", "B", "choice"), is_correct(None, "B", "choice")
    (True, False)
    """
    if prediction is None or gold is None:
        return False
    if strict:
        return prediction == gold
    t = _coerce_type(answer_type)
    if t is AnswerType.NUMBER:
        try:
            gold_number = parse_gold_number(str(gold))
        except NumberFormatError:  # a gold that is not one number matches nothing
            return False
        number = read_number(prediction)
        return number is not None and abs(number - gold_number) <= NUMBER_TOLERANCE
    p, g = normalise_answer(prediction, t), normalise_answer(gold, t)
    return p is not None and p == g
