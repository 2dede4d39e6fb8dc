"""Data layer: tasks, splits, answer extraction, recorded teacher completions.

>>> from prada.data import get_task, extract_student_answer, is_correct
>>> task = get_task("synth_last_letters")
>>> ex = task.load("test")[0]
>>> is_correct(extract_student_answer(f" {ex.rationale} --> {ex.answer} END", task.answer_type), ex.answer, task.answer_type)
True
"""

from prada.data.answers import (
    extract_student_answer,
    extract_teacher_answer,
    is_correct,
    normalise_answer,
)
from prada.data.example import AnswerType, Category, Example
from prada.data.synthetic import SYNTHETIC_TASKS
from prada.data.tasks import BUILTIN_TASKS, STAGE2_JOIN, TRIGGERS, Task, get_task, list_tasks, resolve_data_dir
from prada.data.teacher_corpus import (
    join_recorded_teacher,
    load_recorded_teacher,
    remap_choice,
    score_recorded_teacher,
)
from prada.data.text import format_choices, normalise_question, split_choices

__all__ = [
    "AnswerType", "Category", "Example", "Task", "get_task", "list_tasks", "resolve_data_dir",
    "BUILTIN_TASKS", "SYNTHETIC_TASKS", "TRIGGERS", "STAGE2_JOIN",
    "extract_teacher_answer", "extract_student_answer", "is_correct",
    "normalise_answer", "load_recorded_teacher", "join_recorded_teacher", "remap_choice",
    "score_recorded_teacher", "normalise_question", "format_choices", "split_choices",
]
