"""Teacher prompts: Zero-Shot-CoT in two stages (Kojima et al. 2022) and Few-shot-CoT (Wei et al.).

Zero-Shot-CoT::

    stage 1 (rationale):  "Q: {question}\\nA: Let's think step by step."          -> rationale
    stage 2 (answer):     stage-1 prompt + rationale + " \\n" + trigger           -> answer (greedy)

(Kojima's code appends ``" "`` and a trigger that starts with ``"\\n"``; our triggers are stored
without the newline, so the join is ``" \\n"`` — ``prada.data.tasks.STAGE2_JOIN``.)

The answer is read from ``trigger.strip() + continuation`` (the form of the recorded
``answer_completion``) by the data layer's ``extract_teacher_answer``.

Few-shot-CoT: the task's exemplars from ``finetune_cot/few_shot_cot_prompts.json`` followed by
``"\\nQ: {question}\\nA:"``; generation stops at the next ``"\\nQ:"``. When the rationale contains
``"The answer is"`` the answer is read from there (no second request); otherwise stage 2 runs with the
trigger as above.

Chat models get the same content as a conversation: stage 1 is one user turn holding the stage-1
text; stage 2 adds the rationale as the assistant's turn and the trigger as a new user turn (chat
APIs cannot continue an assistant turn portably).

>>> p = PromptBuilder(style="zero_shot_cot", trigger="Therefore, the answer (arabic numerals) is")
>>> p.rationale_prompt("1 + 1?")
"Q: 1 + 1?\\nA: Let's think step by step."
>>> p.answer_prompt("1 + 1?", " 1 plus 1 is 2.")
"Q: 1 + 1?\\nA: Let's think step by step. 1 plus 1 is 2. \\nTherefore, the answer (arabic numerals) is"
>>> p.answer_completion(" 2.")
'Therefore, the answer (arabic numerals) is 2.'
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prada.errors import TeacherError
from prada.formats import FEW_SHOT_PROMPT, TEACHER_PROMPTS, TeacherPrompt, zero_shot_cot_prompt
from prada.io import read_json
from prada.teacher.backends.base import Prompt

STAGE2_JOIN = " \n"
"""Between the rationale and the answer trigger (as ``prada.data.tasks.STAGE2_JOIN``)."""
FEW_SHOT_ANSWER_MARKER = "The answer is"
FEW_SHOT_STOP = "\nQ:"

# Task registry names whose few-shot exemplars are filed under another name.
FEW_SHOT_ALIASES = {
    "singleeq": "single_eq",
    "last_letters": "last_letter_concatenation",
}

PromptStyle = TeacherPrompt  # the teacher's (evaluation's prompt styles: prada.formats.PromptStyle)


def load_few_shot_exemplars(data_dir: Path | None, task_name: str) -> str:
    """The Few-shot-CoT exemplar block of ``task_name`` (``Q: ...\\nA: ... The answer is X.`` lines)."""
    if data_dir is None:
        raise TeacherError(
            "teacher.prompt=few_shot_cot needs the data directory (finetune_cot/few_shot_cot_prompts.json); "
            "set data.data_dir or $PRADA_DATA_DIR"
        )
    path = Path(data_dir) / "finetune_cot" / "few_shot_cot_prompts.json"
    table = read_json(path)
    if not isinstance(table, dict):
        raise TeacherError(f"{path}: expected a mapping of dataset name -> {{'prompt': ...}}")
    key = FEW_SHOT_ALIASES.get(task_name, task_name)
    entry = table.get(key)
    if not isinstance(entry, dict) or not isinstance(entry.get("prompt"), str):
        raise TeacherError(
            f"no few-shot CoT exemplars for task '{task_name}' in {path}; available: {sorted(table)} "
            "(use teacher.prompt=zero_shot_cot)"
        )
    return entry["prompt"].rstrip("\n")


@dataclass(frozen=True)
class PromptBuilder:
    """Builds the two prompts of one question for a prompting style, plain or chat."""

    style: PromptStyle
    trigger: str
    """The task's Zero-Shot-CoT answer trigger, e.g. ``"Therefore, the answer (arabic numerals) is"``
    (a leading newline, as Kojima writes it, is accepted and ignored)."""
    chat: bool = False
    exemplars: str = ""
    """Few-shot-CoT exemplar block (``style == "few_shot_cot"``)."""

    def __post_init__(self) -> None:
        if self.style not in TEACHER_PROMPTS:
            raise TeacherError(f"unknown teacher.prompt '{self.style}'; valid: {list(TEACHER_PROMPTS)}")
        if self.style == FEW_SHOT_PROMPT and not self.exemplars:
            raise TeacherError("few_shot_cot prompting needs exemplars (load_few_shot_exemplars)")

    # -- text ------------------------------------------------------------------------------------
    def rationale_text(self, question: str) -> str:
        if self.style == FEW_SHOT_PROMPT:
            return f"{self.exemplars}\nQ: {question}\nA:"
        return zero_shot_cot_prompt(question)

    @property
    def stop(self) -> tuple[str, ...]:
        """Stop sequences of stage 1 (few-shot: the next exemplar's ``Q:``)."""
        return (FEW_SHOT_STOP,) if self.style == FEW_SHOT_PROMPT else ()

    # -- prompts as sent ---------------------------------------------------------------------------
    def rationale_prompt(self, question: str) -> Prompt:
        text = self.rationale_text(question)
        if self.chat:
            return ({"role": "user", "content": text},)
        return text

    def answer_prompt(self, question: str, rationale_completion: str) -> Prompt:
        """Stage 2: stage-1 prompt + rationale + ``" \\n"`` + trigger (chat: the trigger as a new turn)."""
        if self.chat:
            return (
                {"role": "user", "content": self.rationale_text(question)},
                {"role": "assistant", "content": rationale_completion.strip()},
                {"role": "user", "content": self.trigger.strip()},
            )
        sep = "" if rationale_completion[:1].isspace() else " "  # recorded rationales were stripped
        return f"{self.rationale_text(question)}{sep}{rationale_completion}{STAGE2_JOIN}{self.trigger.strip()}"

    # -- answers ----------------------------------------------------------------------------------
    def answer_completion(self, continuation: str) -> str:
        """The text answers are extracted from: trigger + the stage-2 continuation."""
        if self.chat and continuation and not continuation[0].isspace():
            continuation = " " + continuation
        return self.trigger.strip() + continuation

    def inline_answer(self, rationale_completion: str) -> str | None:
        """Few-shot-CoT: ``"The answer is X."`` inside the rationale, when present (no stage 2)."""
        if self.style != FEW_SHOT_PROMPT:
            return None
        at = rationale_completion.find(FEW_SHOT_ANSWER_MARKER)
        if at < 0:
            return None
        return rationale_completion[at:].strip()


def clean_rationale(completion: str, style: PromptStyle) -> str:
    """The rationale kept in the corpus: the completion without surrounding whitespace (and, for
    few-shot, without anything after a stray next-question marker)."""
    text = completion
    if style == FEW_SHOT_PROMPT:
        cut = text.find(FEW_SHOT_STOP)
        if cut >= 0:
            text = text[:cut]
    return text.strip()


def normalise_rationale(text: str) -> str:
    """Whitespace-normalised rationale, used to drop duplicates.

    >>> normalise_rationale("  a\\n b   c ") == normalise_rationale("a b c")
    True
    """
    return " ".join(text.split())
