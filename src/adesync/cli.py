"""The ``adesync`` command line (Typer). Command groups live in :mod:`adesync.commands`.

Only the command being run is imported (``adesync diagnose`` does not load the web console),
so every command starts quickly; ``--help`` without a command loads them all. A new command is
one line in :data:`COMMANDS`.
"""

from __future__ import annotations

import logging
import sys
import traceback
from importlib import import_module
from typing import Any

import typer
from rich.markup import escape

from adesync import __version__
from adesync.commands.common import Stopped, err
from adesync.errors import AdesyncError

# name → ("module:attribute" of a Typer app or a command function, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("adesync.commands.admin:init", "Create the data directory, key file and schema."),
    "db": ("adesync.commands.admin:db_app", "Database schema."),
    "secrets": ("adesync.commands.admin:secrets_app", "Secrets at rest."),
    "backup": ("adesync.commands.backup:backup", "Write a passphrase-sealed backup archive."),
    "restore": ("adesync.commands.backup:restore", "Restore a backup archive into this home."),
    "tokens": ("adesync.commands.tokens:tokens_app", "Enrollment-program (server) tokens."),
    "sync": ("adesync.commands.sync:sync", "Sync devices from Apple now."),
    "worker": ("adesync.commands.sync:worker", "Run the scheduler and sync workers."),
    "runs": ("adesync.commands.runs:runs_app", "Sync history."),
    "devices": ("adesync.commands.devices:devices_app", "Devices synced from ABM/ASM."),
    "profiles": ("adesync.commands.profiles:profiles_app", "ADE enrollment profiles."),
    "diagnose": ("adesync.commands.diagnose:diagnose", "Find and explain token problems."),
    "notify": ("adesync.commands.notify:notify_app", "Notifications: webhook and e-mail."),
    "users": ("adesync.commands.users:users_app", "Console users."),
    "apikeys": ("adesync.commands.apikeys:apikeys_app", "API keys."),
    "serve": ("adesync.commands.serve:serve", "Run the API, console and scheduler."),
    "demo": ("adesync.commands.demo:demo", "Run the demo: simulator, tokens, console."),
    "simulate": ("adesync.commands.simulate:simulate", "Run the simulator of Apple's service."),
}


_debug = {"on": False}


class _LogLines(logging.Formatter):
    """Log lines without tracebacks, unless ``--debug``."""

    def formatException(self, ei: Any) -> str:
        return super().formatException(ei) if _debug["on"] else ""

    def formatStack(self, stack_info: str) -> str:
        return super().formatStack(stack_info) if _debug["on"] else ""


def _quiet_tracebacks() -> None:
    """Python prints the warnings of a process without a configured log on stderr
    (``logging.lastResort``), tracebacks included: a command's output keeps them for
    ``--debug``, as it does for its own errors (``serve``, ``worker`` and ``ADESYNC_LOG_JSON``
    configure a log that keeps them)."""
    if logging.lastResort is not None:
        logging.lastResort.setFormatter(_LogLines())


def _version(value: bool) -> None:
    if value:
        typer.echo(f"adesync {__version__}")
        raise typer.Exit()


def root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks of errors."),
) -> None:
    """adesync: ADE token health, device sync and enrollment profiles."""
    _debug["on"] = debug


def build_app(only: str | None = None, *, bare: bool = False) -> typer.Typer:
    """The Typer app with command ``only`` (when it is one of ours), with none when ``bare``
    (``--version``), else with every command (for the help and for unknown names)."""
    app = typer.Typer(
        name="adesync",
        help="Keep Apple Automated Device Enrollment tokens working.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    app.callback()(root)
    names = [only] if only in COMMANDS else [] if bare else list(COMMANDS)
    for name in names:
        target, _help = COMMANDS[name]
        module_name, attribute = target.split(":")
        found = getattr(import_module(module_name), attribute)
        if isinstance(found, typer.Typer):
            app.add_typer(found, name=name)
        else:
            app.command(name)(found)
    return app


def _command_name(argv: list[str]) -> str | None:
    """The command a command line names (the root takes no option with a value)."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def run_cli(argv: list[str] | None = None) -> int:
    """Run one command; expected failures print one sentence on stderr. Returns the exit code."""
    _debug["on"] = False
    _quiet_tracebacks()
    args = sys.argv[1:] if argv is None else argv
    try:
        name = _command_name(args)
        app = build_app(name, bare=name is None and "--version" in args)
        app(args=args, prog_name="adesync")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except AdesyncError as exc:
        if _debug["on"]:
            traceback.print_exc()
        from adesync.commands.wording import cli_words

        err.print(f"[bold red]error:[/bold red] {escape(cli_words(exc))}", highlight=False)
        return exc.exit_code
    except Stopped as stopped:
        err.print(stopped.message, highlight=False, markup=False)
        return stopped.exit_code
    except KeyboardInterrupt:  # Ctrl-C outside a command's event loop (starting, or a prompt)
        err.print("interrupted")
        return 130
    except Exception as exc:  # a defect: still one line, the traceback only with --debug
        if _debug["on"]:
            traceback.print_exc()
        err.print(
            f"[bold red]unexpected error:[/bold red] {escape(type(exc).__name__)}: "
            f"{escape(str(exc).splitlines()[0] if str(exc) else '')} "
            "(run again with --debug for the traceback, and please report it)",
            highlight=False,
        )
        return 1
    return 0


def main() -> None:
    sys.exit(run_cli())


if __name__ == "__main__":
    main()
