"""The docstring examples of prada.data run as written."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["answers", "text", "splits", "synthetic", "tasks", "teacher_corpus", "__init__"]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    module = importlib.import_module("prada.data" if name == "__init__" else f"prada.data.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
