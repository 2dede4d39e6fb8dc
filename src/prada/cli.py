"""The ``prada`` command: a thin layer over the stage libraries.

Each stage owns its sub-commands (``prada.<stage>.commands``); this module mounts them and turns
every user error into one clear line on stderr and exit code 2, never a traceback: ``PradaError``
(config, data, run folders, checkpoints), usage errors (an unknown flag, a bad value, a missing
option) and operating-system errors (a permission, a full disk), each naming what is wrong.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

import typer
from rich.console import Console

from prada.errors import PradaError
from prada.redact import redact_text

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
        app(args=hoist_progress_flags(args), prog_name="prada", standalone_mode=False)
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
        "prada.commands",
        "prada.reporting.commands",
        "prada.status.commands",
    ):
        # A missing module is a packaging bug: it must fail loudly, never hide a command.
        importlib.import_module(module_name).register(app)


def _exception_types(name: str) -> tuple[type[Any], ...]:
    """``name`` from click and from typer's vendored copy of click (typer >= 0.2x raises its own
    classes, which are not click's: catching only one of them lets usage errors through)."""
    found = []
    for module_name in ("typer._click.exceptions", "click.exceptions"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        if hasattr(module, name):
            found.append(getattr(module, name))
    return tuple(found)


def usage_error_line(error: BaseException) -> str:
    """One line for a click/typer usage error: the command, what is wrong, where to get help.

    ``prada teach: Invalid value for '--samples': 'abc' is not a valid integer. (see 'prada teach --help')``
    """
    ctx = getattr(error, "ctx", None)
    format_message = getattr(error, "format_message", None)
    message = format_message() if callable(format_message) else str(error)
    if ctx is not None:
        message = f"{ctx.command_path}: {message} (see '{ctx.command_path} --help')"
    return " ".join(message.split())


class _RedactingFilter(logging.Filter):
    """Log records lose any credential embedded in a URL (``prada.redact``) before they are shown."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact_text(record.getMessage())
        record.args = None
        return True


def _error(text: str) -> None:
    err_console.print(f"[bold red]error:[/] {redact_text(text)}", highlight=False, soft_wrap=True, markup=True)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _RedactingFilter) for f in handler.filters):
            handler.addFilter(_RedactingFilter())
    # Our own progress bars say what is happening; per-shard load/save bars are noise.
    import transformers

    transformers.utils.logging.disable_progress_bar()
    _mount()
    shows_help = _exception_types("NoArgsIsHelpError")
    click_errors = _exception_types("ClickException")
    try:
        _run_app(sys.argv[1:] if argv is None else list(argv))
    except PradaError as e:
        _error(_escape(str(e)))
        sys.exit(e.exit_code)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        err_console.print("interrupted: finished work is kept; run the same command again to go on")
        sys.exit(130)
    except shows_help as e:  # `prada` or `prada data` alone: the help is the answer
        e.show()
        sys.exit(e.exit_code)
    except click_errors as e:
        _error(_escape(usage_error_line(e)))
        sys.exit(2)
    except OSError as e:  # a permission, a full disk, a missing folder: names the path
        _error(_escape(f"{e.strerror or e}: {e.filename}" if e.filename else str(e)))
        sys.exit(2)


def _escape(text: str) -> str:
    """Rich markup off for user text (``[yes]`` in a message is not a style)."""
    from rich.markup import escape

    return escape(text)


if __name__ == "__main__":
    main()
