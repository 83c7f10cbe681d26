"""Open what a command or server needs: settings, database and secret key, all checked."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from adesync.config import Settings, load_settings
from adesync.store.database import Database
from adesync.store.keycheck import stored_key_check, verify_key
from adesync.store.migrate import SchemaOutOfDate, require_current
from adesync.store.secrets import SecretBox, load_box, read_key_file


@dataclass
class Runtime:
    settings: Settings
    db: Database
    box: SecretBox


def pending_key_file(settings: Settings) -> Path:
    """Where ``secrets rotate`` writes the new key before the database switches to it."""
    return settings.secret_key_file.with_name("secret.key.new")


def sqlite_path(settings: Settings) -> Path | None:
    url = settings.effective_database_url
    if not url.startswith("sqlite"):
        return None
    path = url.split(":///", 1)[1]
    return None if path in ("", ":memory:") else Path(path)


async def load_verified_box(settings: Settings, db: Database) -> SecretBox:
    """The secret key, checked against the database (finishing an interrupted rotation)."""
    box = load_box(settings.secret_key, settings.secret_key_file)
    if settings.secret_key:
        await verify_key(db, box)
        return box
    pending = pending_key_file(settings)
    if pending.exists():
        async with db.read() as session:
            current = await stored_key_check(session)
        new_box = read_key_file(pending)
        if current == new_box.key_check:
            # The rotation committed but the process stopped before swapping the files.
            os.replace(pending, settings.secret_key_file)
            return new_box
        pending.unlink()
    await verify_key(db, box)
    return box


@asynccontextmanager
async def open_runtime(settings: Settings | None = None) -> AsyncIterator[Runtime]:
    """Settings, a database at the latest schema and the verified secret key; disposed after."""
    settings = settings or load_settings()
    path = sqlite_path(settings)
    if path is not None and not path.exists():
        raise SchemaOutOfDate(f"There is no adesync database at {path}; run `adesync init` first.")
    db = Database(settings.effective_database_url)
    try:
        await require_current(db)
        box = await load_verified_box(settings, db)
        yield Runtime(settings=settings, db=db, box=box)
    finally:
        await db.dispose()
