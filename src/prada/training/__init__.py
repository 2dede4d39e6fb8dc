"""Stages 2-3: the training loop of every method, resumable checkpoints, ``prada train``."""

from prada.methods import METHOD_SPECS, MethodSpec, method_spec  # re-exported: the registry lives in prada.methods
from prada.training.loop import train
from prada.training.summary import TrainSummary

__all__ = ["METHOD_SPECS", "MethodSpec", "TrainSummary", "method_spec", "train"]
