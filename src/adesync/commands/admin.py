"""``adesync init``, ``adesync db upgrade`` and ``adesync secrets rotate``."""

from __future__ import annotations

import os

import typer

from adesync.commands.common import err, out, run
from adesync.config import Settings, load_settings
from adesync.runtime import load_verified_box, open_runtime, pending_key_file, sqlite_path
from adesync.store.database import Database
from adesync.store.keycheck import adopt_key, rotate_secrets
from adesync.store.migrate import upgrade
from adesync.store.secrets import SecretBox, ensure_key_file, load_box, write_key_file

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
secrets_app = typer.Typer(help="Secrets at rest.", no_args_is_help=True)


async def initialise(settings: Settings) -> list[str]:
    """Create the data dir, key file and schema; returns what was done (empty if nothing)."""
    done: list[str] = []
    if not settings.home.exists():
        settings.home.mkdir(parents=True, mode=0o700)
        done.append(f"created {settings.home}")
    path = sqlite_path(settings)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    if settings.secret_key:
        box = load_box(settings.secret_key, settings.secret_key_file)
    else:
        box, created = ensure_key_file(settings.secret_key_file)
        if created:
            done.append(f"created secret key file {settings.secret_key_file} (mode 0600)")
    db = Database(settings.effective_database_url)
    try:
        await db.ping()
        before, after = await upgrade(db)
        if before != after:
            done.append(f"migrated database schema to revision {after}")
        await adopt_key(db, box)
        from adesync.commands import init_hooks

        for hook in init_hooks.HOOKS:
            done.extend(await hook(settings, db, box))
    finally:
        await db.dispose()
    return done


def init() -> None:
    """Create the data directory, the secret key file and the database schema (idempotent)."""
    settings = load_settings()
    done = run(initialise(settings))
    if done:
        for line in done:
            out.print(f"[green]✓[/green] {line}")
    else:
        out.print("adesync is already set up; nothing changed.")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations."""

    async def go() -> tuple[str | None, str]:
        settings = load_settings()
        db = Database(settings.effective_database_url)
        try:
            await db.ping()
            return await upgrade(db)
        finally:
            await db.dispose()

    before, after = run(go())
    if before == after:
        out.print(f"The schema is already at the latest revision ({after}).")
    else:
        out.print(f"Migrated the schema from {before or 'empty'} to {after}.")


@secrets_app.command("rotate")
def secrets_rotate() -> None:
    """Re-encrypt every stored secret under a new key, in one transaction."""
    settings = load_settings()

    async def go() -> tuple[int, SecretBox]:
        async with open_runtime(settings) as rt:
            old = await load_verified_box(settings, rt.db)
            new = SecretBox.generate()
            if settings.secret_key:
                moved = await rotate_secrets(rt.db, old, new)
                return moved, new
            # Write the new key beside the old one first: whichever moment a crash comes,
            # the key that opens the database is on disk (see load_verified_box).
            pending = pending_key_file(settings)
            write_key_file(pending, new)
            moved = await rotate_secrets(rt.db, old, new)
            os.replace(pending, settings.secret_key_file)
            return moved, new

    moved, new = run(go())
    out.print(f"Re-encrypted {moved} secret value(s) under a new key.")
    if settings.secret_key:
        err.print(
            "ADESYNC_SECRET_KEY is set, so the new key was not written to a file. Set it to "
            "this value on every machine now (it is shown once):"
        )
        out.print(new.to_text(), markup=False, highlight=False)
