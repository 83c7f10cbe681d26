"""The ``adesync`` command line (Typer). Command groups live in :mod:`adesync.commands`."""

from __future__ import annotations

import sys
import traceback

import typer
from rich.markup import escape

from adesync import __version__
from adesync.commands import admin, apikeys, devices, profiles, users
from adesync.commands import sync as sync_commands
from adesync.commands import tokens as token_commands
from adesync.commands.common import err
from adesync.commands.demo import demo as demo_command
from adesync.commands.diagnose import diagnose
from adesync.commands.notify import notify_app
from adesync.commands.serve import serve as serve_command
from adesync.commands.simulate import simulate
from adesync.errors import AdesyncError

app = typer.Typer(
    name="adesync",
    help="Keep Apple Automated Device Enrollment tokens working.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
_debug = {"on": False}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"adesync {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks of errors."),
) -> None:
    """adesync: ADE token health, device sync and enrollment profiles."""
    _debug["on"] = debug


app.command("init")(admin.init)
app.add_typer(admin.db_app, name="db")
app.add_typer(admin.secrets_app, name="secrets")
app.add_typer(token_commands.tokens_app, name="tokens")
app.command("sync")(sync_commands.sync)
app.command("worker")(sync_commands.worker)
app.add_typer(devices.devices_app, name="devices")
app.add_typer(profiles.profiles_app, name="profiles")
app.add_typer(users.users_app, name="users")
app.add_typer(apikeys.apikeys_app, name="apikeys")
app.command("serve")(serve_command)
app.command("demo")(demo_command)
app.command("simulate")(simulate)
app.command("diagnose")(diagnose)
app.add_typer(notify_app, name="notify")


def run_cli(argv: list[str] | None = None) -> int:
    """Run one command; expected failures print one sentence on stderr. Returns the exit code."""
    _debug["on"] = False
    try:
        app(args=argv, prog_name="adesync")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except AdesyncError as exc:
        if _debug["on"]:
            traceback.print_exc()
        err.print(f"[bold red]error:[/bold red] {escape(exc.message)}", highlight=False)
        return exc.exit_code
    except KeyboardInterrupt:
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
