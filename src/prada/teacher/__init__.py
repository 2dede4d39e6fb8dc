"""Stage 1 of PRADA: a teacher writes step-by-step rationales for the labeled source questions.

>>> from prada.teacher import run_teacher_stage, list_backends
>>> list_backends()
['gold', 'hf', 'openai', 'replay', 'vllm']

See ``docs/teacher.md``. ``run_teacher_stage(cfg, out_dir)`` writes ``out_dir/cache.jsonl`` (every
completed request), ``out_dir/corpus.jsonl`` (kept rationales) and ``out_dir/summary.json``.
"""

from prada.teacher.backends import BACKENDS, Request, Result, Sampling, TeacherBackend, get_backend
from prada.teacher.cache import TeacherCache, sample_key
from prada.teacher.generate import run_teacher_stage
from prada.teacher.prompts import PromptBuilder


def list_backends() -> list[str]:
    """Names of the teacher backends."""
    return sorted(BACKENDS)


__all__ = [
    "BACKENDS",
    "PromptBuilder",
    "Request",
    "Result",
    "Sampling",
    "TeacherBackend",
    "TeacherCache",
    "get_backend",
    "list_backends",
    "run_teacher_stage",
    "sample_key",
]
