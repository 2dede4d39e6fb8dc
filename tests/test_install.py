"""The install: torch is lower-bounded (a user's own build is kept), the README's one set-up command
installs the CPU wheel itself, and CI runs exactly the README's install and test commands."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def readme_setup_command() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Set-up", 1)[1]
    return re.search(r"```bash\n(.+?)\n```", section, re.S).group(1).strip()


def pip_installs(command: str) -> list[str]:
    """The ``.venv/bin/pip install ...`` steps of a shell command, without ``--quiet``."""
    steps = [s.strip() for line in command.splitlines() for s in line.split("&&")]
    return [" ".join(w for w in s.split() if w != "--quiet") for s in steps if s.startswith(".venv/bin/pip install")]


def torch_requirement() -> Requirement:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return next(Requirement(d) for d in deps if Requirement(d).name == "torch")


def test_torch_is_a_lower_bound_not_a_pin():
    spec = torch_requirement().specifier
    assert [s.operator for s in spec] == [">="], f"torch must only be lower-bounded, got '{spec}'"
    assert spec.contains("2.6.0") and spec.contains("3.1.0") and not spec.contains("2.5.1")


def test_readme_setup_installs_the_cpu_wheel_that_satisfies_the_bound():
    installs = pip_installs(readme_setup_command())
    assert installs[0] == '.venv/bin/pip install torch==2.13.0 -e ".[dev]"'
    assert torch_requirement().specifier.contains("2.13.0")


def test_ci_runs_exactly_the_readme_install_and_test_commands():
    ci = (ROOT / ".ci" / "run").read_text()
    assert pip_installs(ci) == pip_installs(readme_setup_command())
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    test_command = re.search(r"Run the tests:\n\n```bash\n(.+?)\n```", readme, re.S).group(1).strip()
    assert test_command in ci


def test_ci_runs_the_lint_and_type_gate_before_the_tests():
    ci = (ROOT / ".ci" / "run").read_text()
    lint, types, tests = (ci.index(c) for c in ("-m ruff check src tests", "-m mypy", "-m pytest"))
    assert lint < types < tests
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"ruff==' in pyproject and '"mypy==' in pyproject  # pinned in the dev extra
    assert "--doctest-modules" in pyproject  # the docstring examples of src/ run with the tests
