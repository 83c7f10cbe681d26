"""``adesync init``, ``adesync db upgrade`` and ``adesync secrets rotate``."""

from __future__ import annotations

from pathlib import Path

import typer

from adesync.commands.common import err, out, run
from adesync.config import Settings, load_settings
from adesync.runtime import open_runtime, sqlite_path
from adesync.services.rotation import Rotation, rotate_key
from adesync.store.database import Database
from adesync.store.keycheck import adopt_key, holds_secrets
from adesync.store.migrate import upgrade
from adesync.store.secrets import (
    SecretBox,
    ensure_key_file,
    key_missing,
    load_box,
    read_key_file,
)

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
secrets_app = typer.Typer(help="Secrets at rest.", no_args_is_help=True)


async def _key_for_init(settings: Settings, db: Database, done: list[str]) -> SecretBox:
    """The installation's key; a new key file only for a database that holds no secrets (a new
    key could never open them)."""
    if settings.secret_key:
        return load_box(settings.secret_key, settings.secret_key_file)
    if settings.secret_key_file.exists():
        return read_key_file(settings.secret_key_file)
    if await holds_secrets(db):
        raise key_missing(settings.secret_key_file)
    box, created = ensure_key_file(settings.secret_key_file)
    if created:
        done.append(f"created secret key file {settings.secret_key_file} (mode 0600)")
    return box


async def initialise(settings: Settings) -> list[str]:
    """Create the data dir, key file and schema; returns what was done (empty if nothing)."""
    done: list[str] = []
    if not settings.home.exists():
        settings.home.mkdir(parents=True, mode=0o700)
        done.append(f"created {settings.home}")
    path = sqlite_path(settings)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    db = Database(settings.effective_database_url)
    try:
        await db.ping()
        before, after = await upgrade(db)
        if before != after:
            done.append(f"migrated database schema to revision {after}")
        box = await _key_for_init(settings, db, done)
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
def secrets_rotate(
    new_key_file: Path | None = typer.Option(
        None,
        "--new-key-file",
        help="With ADESYNC_SECRET_KEY set (then required): a new file to write the new key to "
        "(mode 0600) before the secrets are re-sealed.",
    ),
) -> None:
    """Re-encrypt every stored secret under a new key, in one transaction."""
    settings = load_settings()

    target = new_key_file.absolute() if new_key_file is not None else None

    async def go() -> Rotation:
        async with open_runtime(settings) as rt:
            return await rotate_key(settings, rt.db, target)

    done = run(go())
    for line in done.recovered:
        err.print(line, markup=False, highlight=False)
    out.print(f"Re-encrypted {done.moved} secret value(s) under a new key.")
    if settings.secret_key:
        out.print(
            f"The new key is in {done.new_key_file} (mode 0600). Set ADESYNC_SECRET_KEY to its "
            "contents on every machine that shares the database now, then keep the file "
            "somewhere safe or remove it.",
            markup=False,
            highlight=False,
            soft_wrap=True,  # a path must be printed whole, not wrapped or shortened
        )
    elif done.old_key_file is not None:
        out.print(
            f"The new key is {done.new_key_file}; the old key is kept as {done.old_key_file}: "
            "remove it once no copy of the database made before now is needed.",
            markup=False,
            highlight=False,
            soft_wrap=True,  # a path must be printed whole, not wrapped or shortened
        )
