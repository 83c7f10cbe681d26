"""Storage conformance: runs unchanged on SQLite and PostgreSQL. Later features extend it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from adesync.store.database import Database
from adesync.store.keycheck import adopt_key, rotate_secrets, verify_key
from adesync.store.migrate import current_revision, head_revision, require_current
from adesync.store.secrets import SecretBox, SecretKeyError
from adesync.store.tables import tokens


async def test_schema_is_at_the_latest_revision(db: Database) -> None:
    assert await current_revision(db) == head_revision()
    await require_current(db)


async def _insert_token(db: Database, box: SecretBox, name: str = "t1") -> None:
    now = datetime.now(UTC)
    async with db.write() as session:
        await session.execute(
            tokens.insert().values(
                name=name,
                dep_url="https://mdmenrollment.apple.com",
                oauth_credentials=box.seal_text('{"consumer_key": "CK_1"}'),
                access_token_expiry=now + timedelta(days=365),
                created_at=now,
                updated_at=now,
            )
        )


async def test_timestamps_come_back_aware_utc(db: Database, box: SecretBox) -> None:
    await _insert_token(db, box)
    async with db.read() as session:
        row = (await session.execute(select(tokens))).one()
    assert row.access_token_expiry.tzinfo is not None
    assert row.terms_not_accepted is False
    assert row.consecutive_failures == 0


async def test_write_rolls_back_on_error(db: Database, box: SecretBox) -> None:
    with pytest.raises(RuntimeError):
        async with db.write() as session:
            now = datetime.now(UTC)
            await session.execute(
                tokens.insert().values(name="x", dep_url="u", created_at=now, updated_at=now)
            )
            raise RuntimeError("boom")
    async with db.read() as session:
        assert (await session.execute(select(tokens.c.id))).first() is None


async def test_key_check_refuses_another_key(db: Database, box: SecretBox) -> None:
    await adopt_key(db, box)
    await verify_key(db, box)
    with pytest.raises(SecretKeyError, match="does not match this database"):
        await verify_key(db, SecretBox.generate())
    with pytest.raises(SecretKeyError):
        await adopt_key(db, SecretBox.generate())


async def test_rotation_reseals_and_the_old_key_stops_working(db: Database, box: SecretBox) -> None:
    await adopt_key(db, box)
    await _insert_token(db, box)
    new = SecretBox.generate()
    assert await rotate_secrets(db, box, new) == 1
    async with db.read() as session:
        sealed = (await session.execute(select(tokens.c.oauth_credentials))).scalar_one()
    assert new.open_text(sealed) == '{"consumer_key": "CK_1"}'
    with pytest.raises(SecretKeyError):
        box.open(sealed)
    with pytest.raises(SecretKeyError):
        await verify_key(db, box)
    await verify_key(db, new)
