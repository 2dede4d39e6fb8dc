"""The ``prada`` command: a thin layer over the stage libraries.

Each stage owns its sub-commands (``prada.<stage>.commands``); this module mounts them and turns
user errors (``PradaError``) into one clear line and a non-zero exit.
"""

from __future__ import annotations

import logging
import sys

import typer
from rich.console import Console

from prada.errors import PradaError

app = typer.Typer(
    name="prada",
    help="PRADA: chain-of-thought distillation that generalises across domains.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err_console = Console(stderr=True)

PROGRESS_FLAGS = ("--progress", "--no-progress")


@app.callback()
def _global_options(
    progress: bool | None = typer.Option(
        None, "--progress/--no-progress", show_default=False,
        help="Force live progress bars (--progress) or plain progress lines every 30 s (--no-progress); "
             "default: bars on a terminal, lines in a log file. Accepted anywhere on the command line.",
    ),
) -> None:
    from prada.progress import CLI_MODE

    CLI_MODE.set("auto" if progress is None else ("live" if progress else "plain"))  # main() resets it


def hoist_progress_flags(argv: list[str]) -> list[str]:
    """``prada run cfg.yaml --no-progress`` means ``prada --no-progress run cfg.yaml``: the flag is
    the main command's, so it is moved in front of the sub-command (never past a ``--``).

    >>> hoist_progress_flags(["run", "c.yaml", "--no-progress", "--", "--progress"])
    ['--no-progress', 'run', 'c.yaml', '--', '--progress']
    """
    end = argv.index("--") if "--" in argv else len(argv)
    flags = [a for a in argv[:end] if a in PROGRESS_FLAGS]
    return [*flags, *[a for a in argv[:end] if a not in PROGRESS_FLAGS], *argv[end:]]


def _run_app(args: list[str]) -> None:
    """``app(args)`` with ``--progress/--no-progress`` in effect for this one command."""
    from prada.progress import CLI_MODE

    token = CLI_MODE.set("auto")
    try:
        app(args=hoist_progress_flags(args), standalone_mode=False)
    finally:
        CLI_MODE.reset(token)


def _mount() -> None:
    # Imported here so that `prada --help` stays fast and import errors name the stage.
    from prada.data.commands import data_app

    app.add_typer(data_app, name="data")
    for module_name in (
        "prada.teacher.commands",
        "prada.training.commands",
        "prada.evaluation.commands",
        "prada.runner",
        "prada.sweep",
        "prada.reporting.commands",
        "prada.status.commands",
    ):
        try:
            module = __import__(module_name, fromlist=["register"])
        except ModuleNotFoundError as e:
            if e.name == module_name:
                continue  # stage not built yet
            raise
        module.register(app)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # Our own progress bars say what is happening; per-shard load/save bars are noise.
    import transformers

    transformers.utils.logging.disable_progress_bar()
    _mount()
    try:
        _run_app(sys.argv[1:] if argv is None else list(argv))
    except PradaError as e:
        err_console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        sys.exit(e.exit_code)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except Exception as e:  # click usage errors
        import click

        if isinstance(e, click.ClickException):
            e.show()
            sys.exit(e.exit_code)
        raise


if __name__ == "__main__":
    main()
