"""Every usage error of every ``prada`` command is one line on stderr, exit code 2, no traceback.

The commands are walked from the mounted app, so a command added later is covered too: an unknown
flag, a non-number for every numeric option, and the command without its required arguments.
"""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
import typer

from prada import cli


def _leaf_commands() -> list[tuple[list[str], typing.Any]]:
    cli._mount()
    found = []

    def walk(command, path: list[str]) -> None:
        subcommands = getattr(command, "commands", None)
        if subcommands:
            for name, sub in subcommands.items():
                walk(sub, [*path, name])
        else:
            found.append((path, command))

    walk(typer.main.get_command(cli.app), [])
    return found


def _number_type(param) -> type | None:
    """int/float for a numeric option, across typer (type_descriptor) and click (type.name)."""
    descriptor = getattr(param, "type_descriptor", None)
    annotation = getattr(descriptor, "annotation", None)
    if annotation is None:
        return {"integer": int, "float": float}.get(getattr(getattr(param, "type", None), "name", ""))
    candidates = typing.get_args(annotation) or (annotation,)
    return next((c for c in candidates if c in (int, float)), None)


def _bad_invocations() -> list[tuple[str, list[str], str]]:
    """(case id, argv, a word the error line must contain)."""
    cases = []
    for path, command in _leaf_commands():
        name = " ".join(path)
        cases.append((f"{name}: unknown flag", [*path, "--no-such-flag"], "--no-such-flag"))
        if any(p.required for p in command.params):
            cases.append((f"{name}: nothing given", list(path), "Missing"))
        for param in command.params:
            if param.param_type_name == "option" and not param.is_flag and _number_type(param):
                flag = param.opts[0]
                cases.append((f"{name}: {flag} abc", [*path, flag, "abc"], flag))
    return cases


CASES = _bad_invocations()


def test_the_walk_finds_every_command_and_its_numeric_options():
    names = {" ".join(path) for path, _ in _leaf_commands()}
    assert {"teach", "train", "evaluate", "run", "sweep", "report", "data list", "data show",
            "data score-teacher"} <= names
    numeric = {case_id for case_id, _, _ in CASES if case_id.endswith(" abc")}
    assert {"teach: --samples abc", "teach: --temperature abc", "train: --seed abc", "evaluate: --batch-size abc",
            "data show: -n abc"} <= numeric


def run_main(capsys, argv: list[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    out = capsys.readouterr()
    return int(e.value.code or 0), out.out, out.err


def assert_one_error_line(code: int, out: str, err: str, needle: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, (code, err)
    assert "Traceback" not in err + out
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert needle in lines[0], lines[0]


@pytest.mark.parametrize(("argv", "needle"), [(argv, needle) for _, argv, needle in CASES],
                         ids=[case_id for case_id, _, _ in CASES])
def test_every_usage_error_is_one_line_and_exit_2(capsys, argv, needle):
    code, out, err = run_main(capsys, argv)
    assert_one_error_line(code, out, err, needle)
    assert f"prada {argv[0]}" in err  # names the command, and where its help is


def test_an_unknown_command_is_one_line(capsys):
    assert_one_error_line(*run_main(capsys, ["tarin"]), "No such command 'tarin'")


@pytest.fixture
def bad_configs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Config files with one problem each, and what the error line must say."""
    files = {
        "not utf-8": (b"name: x\noutput_dir: caf\xe9\n", "c.yaml:2: not UTF-8 text"),
        "malformed": (b"train:\n  lr: [1,\n", "malformed YAML"),
        "unknown key": (b"train:\n  lrr: 1e-4\n", "unknown key 'train.lrr' (did you mean 'lr'?)"),
        "bad range": (b"methods: [ft_cot]\ndata:\n  val_fraction: 0.9\n", "data.val_fraction: 0.9 must be in [0, 0.5]"),
    }
    out = {}
    for i, (case, (data, needle)) in enumerate(files.items()):
        path = tmp_path / f"{i}" / "c.yaml"
        path.parent.mkdir()
        path.write_bytes(data)
        out[case] = (path, needle)
    return out


@pytest.mark.parametrize("command", ["run {c}", "train -c {c}", "teach -c {c}", "sweep {c} --param train.lr=1e-4,2e-4",
                                     "evaluate --model m --task synth_coin_flip --config {c}", "data list -c {c}"])
def test_a_bad_config_file_is_one_line_naming_it_in_every_command(capsys, bad_configs, tmp_path, command):
    for path, needle in bad_configs.values():
        code, out, err = run_main(capsys, command.format(c=path).split())
        assert_one_error_line(code, out, err, needle)
        assert str(path) in err
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "c.yaml"]  # nothing written
