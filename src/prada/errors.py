"""Typed user-facing errors. The CLI prints these as one clear message and exits non-zero;
anything else is a bug and keeps its traceback."""

from __future__ import annotations


class PradaError(Exception):
    """Base class of every error caused by user input (config, data, paths, services)."""

    exit_code = 2


class ConfigError(PradaError):
    """A config file, key, value or command-line override is invalid."""


class DataError(PradaError):
    """A data file is missing, malformed, or lacks a required field."""


class TeacherError(PradaError):
    """A teacher backend cannot be used as configured (missing key, unknown model, ...)."""


class TrainingError(PradaError):
    """Training cannot start or continue with the given inputs."""


class EvaluationError(PradaError):
    """A model or checkpoint cannot be evaluated as asked."""


class RunDirError(PradaError):
    """A run directory is incompatible with the requested config or is missing outputs."""


class CheckpointError(RunDirError):
    """A checkpoint or trainer state is damaged, incomplete, or would run code when loaded."""


class ReportError(PradaError):
    """Report inputs cannot be combined as asked (e.g. a paired comparison of evaluations that
    did not answer the same questions, or that lack per-question outcomes)."""
