"""PRADA: PRompt-Assisted Domain-Adversarial fine-tuning for chain-of-thought distillation.

Stages talk through files in a run directory (see ``prada.paths``):
``prada.teacher`` writes the teacher corpus, ``prada.training`` trains students,
``prada.evaluation`` scores them, ``prada.reporting`` turns the metrics into tables and plots.
"""

__version__ = "0.1.0"
