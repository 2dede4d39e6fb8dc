"""The one prompt and target format module, shared by teacher, student and evaluation.

Zero-Shot-CoT (Kojima et al. 2022) and Fine-tune-CoT (Ho et al. 2023) as text:

    teacher / zero-shot stage 1:  "Q: {question}\\nA: Let's think step by step."   -> rationale
    student prompt:               "{question} ###"                                 (no chat template)
    student CoT target:           " {rationale} --> {answer} END"                  (+ EOS)
    student answer-only target:   " {answer} END"                                  (+ EOS)

Evaluation stops a student's generation at ``END`` and reads the answer after ``-->``
(``prada.data.answers.extract_student_answer``).

>>> zero_shot_cot_prompt("1 + 1?")
"Q: 1 + 1?\\nA: Let's think step by step."
>>> format_prompt("1 + 1?") + format_target("2", "1 plus 1 is 2.")
'1 + 1? ### 1 plus 1 is 2. --> 2 END'
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from prada.errors import DataError

PromptStyle = Literal["student", "answer_only", "zero_shot_cot"]
"""How a model is prompted at evaluation: ``student`` (Fine-tune-CoT's ``Q ###`` input, the model
writes ``rationale --> answer END``), ``answer_only`` (the same input, the model writes
``answer END``), ``zero_shot_cot`` (an untrained model, two-stage Zero-Shot-CoT)."""
PROMPT_STYLES: tuple[PromptStyle, ...] = get_args(PromptStyle)
STUDENT_STYLE: PromptStyle = PROMPT_STYLES[0]
ANSWER_ONLY_STYLE: PromptStyle = PROMPT_STYLES[1]
ZERO_SHOT_STYLE: PromptStyle = PROMPT_STYLES[2]

TeacherPrompt = Literal["zero_shot_cot", "few_shot_cot"]
"""How the teacher is prompted (``teacher.prompt``): Zero-Shot-CoT, or Few-shot-CoT with the
dataset's exemplars. Also the folder of recorded completions (``teacher/{model}/{prompt}``)."""
TEACHER_PROMPTS: tuple[TeacherPrompt, ...] = get_args(TeacherPrompt)
ZERO_SHOT_PROMPT: TeacherPrompt = TEACHER_PROMPTS[0]
FEW_SHOT_PROMPT: TeacherPrompt = TEACHER_PROMPTS[1]

ZERO_SHOT_COT_TRIGGER = "Let's think step by step."
"""Kojima et al.'s reasoning cue: the end of the stage-1 prompt."""
PROMPT_SUFFIX = " ###"
"""Fine-tune-CoT's separator after the question (without a chat template)."""
COT_SEPARATOR = "-->"
"""Between the rationale and the answer in a student's completion."""
END_MARKER = "END"
"""The end of a student's completion; generation stops at it."""
STUDENT_STOP: tuple[str, ...] = (END_MARKER,)
"""Stop strings of a student's generation."""


def zero_shot_cot_prompt(question: str) -> str:
    """Stage 1 of Zero-Shot-CoT without a chat template: ``"Q: {question}\\nA: Let's think step by step."``."""
    return f"Q: {question}\nA: {ZERO_SHOT_COT_TRIGGER}"


def format_prompt(question: str) -> str:
    """The student's input text without a chat template: ``"{question} ###"``."""
    return f"{question}{PROMPT_SUFFIX}"


def format_target(answer: str, rationale: str | None = None, *, answer_only: bool = False) -> str:
    """The student's completion (EOS not included): ``" {rationale} --> {answer} END"`` or, with
    ``answer_only`` (the ``ft`` method), ``" {answer} END"``.

    >>> format_target("8", "5 + 3 = 8.")
    ' 5 + 3 = 8. --> 8 END'
    >>> format_target("8", answer_only=True)
    ' 8 END'
    """
    if answer_only:
        return f" {answer} {END_MARKER}"
    if rationale is None:
        raise DataError("a CoT target needs a rationale (use answer_only for the 'ft' method)")
    return f" {rationale} {COT_SEPARATOR} {answer} {END_MARKER}"


def choice_letters(example: Any, task: Any = None, *, task_first: bool = False) -> str | None:
    """The option letters of a multiple-choice question: the example's own (``example.choices``)
    or the task's (``task.choice_letters``); None for a question without options.

    The two can differ (date_understanding: the task lists ``ABCDEF``, a question may have fewer
    options). The teacher takes the example's first; evaluation takes the task's first
    (``task_first``), as each did when its results were recorded.

    >>> from types import SimpleNamespace as NS
    >>> ex, task = NS(choices={"A": "x", "B": "y"}), NS(choice_letters="ABC")
    >>> choice_letters(ex, task), choice_letters(ex, task, task_first=True), choice_letters(NS(choices=None))
    ('AB', 'ABC', None)
    """
    own = "".join(example.choices) if getattr(example, "choices", None) else None
    of_task = getattr(task, "choice_letters", None) or None
    return (of_task or own) if task_first else (own or of_task)
