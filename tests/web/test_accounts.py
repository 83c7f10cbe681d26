from __future__ import annotations

import pytest
from sqlalchemy import select

from adesync.errors import ConflictError, NotFoundError
from adesync.store.database import Database
from adesync.store.tables_web import api_keys, users
from adesync.web import accounts
from adesync.web.accounts import InvalidName
from adesync.web.audit import list_entries
from adesync.web.roles import Role


async def test_a_user_signs_in_with_the_password_shown_once(db: Database) -> None:
    user, password = await accounts.add_user(db, "alice", Role.OPERATOR, actor="test")
    assert user.role is Role.OPERATOR
    assert len(password) >= 20
    async with db.read() as session:
        stored = (await session.execute(select(users.c.password_hash))).scalar_one()
    assert password not in stored
    assert stored.startswith("$argon2id$")
    assert await accounts.authenticate(db, "alice", password) == accounts.User(
        id=user.id,
        name="alice",
        role=Role.OPERATOR,
        created_at=user.created_at,
        last_login_at=None,
    )
    assert await accounts.authenticate(db, "alice", password + "x") is None
    assert await accounts.authenticate(db, "nobody", password) is None
    assert (await accounts.get_user(db, "alice")).last_login_at is not None


async def test_bad_names_roles_and_duplicates_change_nothing(db: Database) -> None:
    with pytest.raises(InvalidName, match="not valid"):
        await accounts.add_user(db, "a b", Role.ADMIN, actor="test")
    with pytest.raises(InvalidName, match="API keys only"):
        await accounts.add_user(db, "bob", Role.INGEST, actor="test")
    with pytest.raises(InvalidName, match="at least 12"):
        await accounts.add_user(db, "bob", Role.ADMIN, actor="test", password="short")
    with pytest.raises(InvalidName, match="Unknown role 'root'"):
        accounts.parse_role("root", for_key=False)
    assert accounts.parse_role("ingest", for_key=True) is Role.INGEST
    await accounts.add_user(db, "bob", Role.ADMIN, actor="test")
    with pytest.raises(ConflictError, match="already exists"):
        await accounts.add_user(db, "bob", Role.VIEWER, actor="test")
    assert [u.name for u in await accounts.list_users(db)] == ["bob"]
    assert [e.action for e in await list_entries(db)] == ["user.add"]


async def test_the_last_admin_cannot_be_deleted(db: Database) -> None:
    await accounts.add_user(db, "root1", Role.ADMIN, actor="test")
    with pytest.raises(ConflictError, match="last admin"):
        await accounts.delete_user(db, "root1", actor="test")
    await accounts.add_user(db, "root2", Role.ADMIN, actor="test")
    await accounts.delete_user(db, "root1", actor="test")
    with pytest.raises(NotFoundError):
        await accounts.delete_user(db, "root1", actor="test")


async def test_reset_password_replaces_the_old_one(db: Database) -> None:
    _, old = await accounts.add_user(db, "carol", Role.VIEWER, actor="test")
    new = await accounts.reset_password(db, "carol", actor="admin")
    assert await accounts.authenticate(db, "carol", old) is None
    assert await accounts.authenticate(db, "carol", new) is not None
    entries = await list_entries(db)
    assert (entries[0].actor, entries[0].action, entries[0].target) == (
        "admin",
        "user.reset_password",
        "carol",
    )


async def test_api_keys_are_stored_hashed_and_found_by_the_key(db: Database) -> None:
    key, text = await accounts.create_api_key(db, "mdm-hook", Role.INGEST, actor="test")
    assert text.startswith(f"ades_{key.prefix}_")
    async with db.read() as session:
        row = (await session.execute(select(api_keys))).one()
    assert text not in (row.key_hash, row.prefix)
    found = await accounts.lookup_api_key(db, text)
    assert found is not None and found.role is Role.INGEST
    assert await accounts.lookup_api_key(db, text[:-1] + ("A" if text[-1] != "A" else "B")) is None
    assert await accounts.lookup_api_key(db, "garbage") is None
    with pytest.raises(ConflictError):
        await accounts.create_api_key(db, "mdm-hook", Role.VIEWER, actor="test")
    await accounts.revoke_api_key(db, "mdm-hook", actor="test")
    assert await accounts.lookup_api_key(db, text) is None
    with pytest.raises(NotFoundError):
        await accounts.revoke_api_key(db, "mdm-hook", actor="test")


def test_roles_order_and_ingest_is_apart() -> None:
    assert Role.ADMIN.allows(Role.OPERATOR)
    assert Role.OPERATOR.allows(Role.VIEWER)
    assert not Role.VIEWER.allows(Role.OPERATOR)
    assert not Role.INGEST.allows(Role.VIEWER)
    assert Role.INGEST.allows(Role.INGEST)
    assert not Role.OPERATOR.allows(Role.INGEST)
