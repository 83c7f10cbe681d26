"""``adesync backup FILE`` and ``adesync restore FILE [--force]``: parse, prompt and word; the
work is :mod:`adesync.services.backup`'s."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from adesync.commands.common import out, run
from adesync.config import Settings, load_settings
from adesync.errors import AdesyncError
from adesync.runtime import open_runtime
from adesync.services.backup import Restored, make_backup, read_archive, restore_backup


class NoPassphrase(AdesyncError):
    code = "backup_passphrase_missing"


def _passphrase(settings: Settings, *, confirm: bool) -> str:
    """ADESYNC_BACKUP_PASSPHRASE, else asked at the terminal (twice when making a backup)."""
    if settings.backup_passphrase:
        return settings.backup_passphrase
    if not sys.stdin.isatty():
        raise NoPassphrase(
            "No backup passphrase: set ADESYNC_BACKUP_PASSPHRASE, or run this at a terminal "
            "to be asked for one."
        )
    return str(typer.prompt("Backup passphrase", hide_input=True, confirmation_prompt=confirm))


def _counted(counts: dict[str, int]) -> str:
    return (
        f"{counts['tokens']} token(s), {counts['profiles']} profile(s), {counts['users']} "
        f"user(s) and {counts['api_keys']} API key(s)"
    )


def backup(
    file: Path = typer.Argument(..., help="The archive to write (mode 0600; replaced whole)."),
) -> None:
    """Write every token's keys, certificates and credentials, the profiles, users, API keys
    and notification settings to one archive sealed with a passphrase."""
    settings = load_settings()
    passphrase = _passphrase(settings, confirm=True)
    target = file.absolute()

    async def go() -> dict[str, int]:
        async with open_runtime(settings) as rt:
            return await make_backup(rt.db, rt.box, settings.home, target, passphrase)

    counts = run(go())
    out.print(
        f"Wrote {_counted(counts)} to {target} (mode 0600), sealed with the passphrase; "
        "keep the passphrase apart from the file.",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


def _report(done: Restored) -> None:
    replaced = sum(len(names) for names in done.replaced.values())
    line = (
        f"Restored {_counted(done.counts)} from the backup of {done.created_at or 'unknown date'}"
    )
    if replaced:
        line += f", replacing {replaced} that were here"
    out.print(line + "; its tokens sync in full at their next run.", markup=False, soft_wrap=True)
    if done.notify_settings:
        out.print("Restored the notification settings (notify.toml).")


def restore(
    file: Path = typer.Argument(..., help="An archive written by `adesync backup`."),
    force: bool = typer.Option(
        False, "--force", help="Replace tokens, users and API keys of the same names."
    ),
) -> None:
    """Restore a backup into this installation (run `adesync init` first), sealing its secrets
    under this installation's key."""
    settings = load_settings()
    passphrase = _passphrase(settings, confirm=False)

    async def go() -> Restored:
        async with open_runtime(settings) as rt:
            document = read_archive(file, passphrase)
            return await restore_backup(rt.db, rt.box, settings.home, document, force=force)

    _report(run(go()))
