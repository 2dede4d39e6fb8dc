"""Stages 2-3: the training loop of every method, resumable checkpoints, ``prada train``."""

from prada.training.loop import train
from prada.training.methods import METHOD_SPECS, MethodSpec, method_spec

__all__ = ["METHOD_SPECS", "MethodSpec", "method_spec", "train"]
