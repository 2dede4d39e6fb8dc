"""The method registry is the one place a method is defined: everything else derives from it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from prada.errors import TrainingError
from prada.methods import (
    ABLATION_BASELINES,
    BASELINE_METHODS,
    METHOD_SPECS,
    METHODS,
    ZERO_SHOT_MODEL,
    method_spec,
)

SRC = Path(__file__).resolve().parents[1] / "src" / "prada"
NAMES = {*METHODS, *BASELINE_METHODS}
# "prada" is also the program's name (cli.py) and its cache folder (~/.cache/prada).
PROGRAM_NAME_USES = {"cli.py", "student/model.py", "student/chunked_gguf.py"}
# The baseline is named after its prompt, which prada.formats defines (with the teacher's prompts).
PROMPT_NAMES = {"zero_shot_cot", "few_shot_cot"}


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if not isinstance(body, list):
            continue
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            found.add(id(body[0].value))
        for a, b in zip(body, body[1:]):  # attribute docstrings
            if isinstance(a, ast.Assign | ast.AnnAssign) and isinstance(b, ast.Expr) and isinstance(b.value, ast.Constant):
                found.add(id(b.value))
    return found


def test_each_method_name_is_written_in_one_place():
    strays = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel == "methods.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in NAMES and id(node) not in docs:
                if node.value == "prada" and rel in PROGRAM_NAME_USES:
                    continue
                if node.value in PROMPT_NAMES and rel == "formats.py":
                    continue
                strays.append(f"{rel}:{node.lineno}: {node.value!r}")
    assert strays == []


def test_the_registry_says_what_each_method_trains_and_how_it_is_prompted():
    assert METHODS == ("ft", "ft_cot", "ptuning_cot", "dann_cot", "prada")
    assert [m for m in METHODS if METHOD_SPECS[m].prompt_encoder] == ["ptuning_cot", "prada"]
    assert [m for m in METHODS if METHOD_SPECS[m].adversary] == ["dann_cot", "prada"]
    assert {m: METHOD_SPECS[m].prompt_style for m in METHODS} == {
        "ft": "answer_only", "ft_cot": "student", "ptuning_cot": "student", "dann_cot": "student", "prada": "student"}
    assert ABLATION_BASELINES == ("ft_cot", "ptuning_cot", "dann_cot")
    assert ZERO_SHOT_MODEL == "zero_shot_cot"


def test_an_unknown_method_lists_the_valid_ones():
    with pytest.raises(TrainingError, match=r"unknown method 'prda' \(did you mean 'prada'\?\).*'ft_cot'"):
        method_spec("prda")


def test_config_and_reports_derive_from_the_registry():
    from prada.config import RunConfig, load_config
    from prada.reporting.style import method_colour, method_label, method_sort_key

    assert RunConfig().methods == ("ft_cot", "prada")
    for m in METHODS:
        assert method_label(m) == METHOD_SPECS[m].label and method_colour(m) == METHOD_SPECS[m].colour
    assert sorted(["prada", "zero_shot_cot", "ft"], key=method_sort_key) == ["zero_shot_cot", "ft", "prada"]
    with pytest.raises(Exception, match="'dann_cot'/'prada' need at least one target task"):
        load_config(None, ["methods=[dann_cot]"])
