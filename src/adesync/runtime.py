"""Open what a command or server needs: settings, database and secret key, all checked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from adesync.config import Settings, load_settings
from adesync.store.database import Database
from adesync.store.keycheck import verify_key
from adesync.store.keyfiles import KeyFiles, choose_key
from adesync.store.migrate import SchemaOutOfDate, require_current
from adesync.store.secrets import SecretBox, load_box


@dataclass
class Runtime:
    settings: Settings
    db: Database
    box: SecretBox


def sqlite_path(settings: Settings) -> Path | None:
    url = settings.effective_database_url
    if not url.startswith("sqlite"):
        return None
    path = url.split(":///", 1)[1]
    return None if path in ("", ":memory:") else Path(path)


async def load_verified_box(settings: Settings, db: Database) -> SecretBox:
    """The secret key, checked against the database. With ``ADESYNC_SECRET_KEY`` that key;
    else ``secret.key``, or the pending key of a rotation that has committed but not yet
    renamed it. Key files are only read here: only ``secrets rotate`` renames or writes them."""
    if settings.secret_key:
        box = load_box(settings.secret_key, settings.secret_key_file)
        await verify_key(db, box)
        return box
    return await choose_key(KeyFiles(settings.secret_key_file), db)


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
