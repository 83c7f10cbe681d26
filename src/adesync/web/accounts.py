"""Console users and API keys: creation, lookup, password checks. Every change is audited.

Passwords are hashed with argon2id. API keys are 32 random bytes behind a short public prefix
(``ades_<prefix>_<secret>``); only the SHA-256 of the whole key is stored, which is enough for a
value with 256 bits of entropy and keeps each API request cheap.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from adesync.errors import AdesyncError, ConflictError, NotFoundError
from adesync.store.database import Database
from adesync.store.tables_web import api_keys, users, web_sessions
from adesync.store.types import utcnow
from adesync.web.audit import record_in
from adesync.web.roles import KEY_ROLES, USER_ROLES, Role

__all__ = [
    "ApiKey",
    "InvalidName",
    "User",
    "add_user",
    "authenticate",
    "count_users",
    "create_api_key",
    "delete_user",
    "generate_password",
    "get_user",
    "list_api_keys",
    "list_users",
    "lookup_api_key",
    "parse_role",
    "reset_password",
    "revoke_api_key",
]

# New names only (existing rows keep theirs): ASCII, so no look-alike of another name, and
# fullmatch, so no trailing newline. People's names may be e-mail addresses.
USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")
KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
KEY_PREFIX = "ades"
MIN_PASSWORD_LENGTH = 12

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so a wrong name costs as long as a wrong
    password."""
    return _hasher.hash("adesync-no-such-user")


class InvalidName(AdesyncError):
    code = "validation_error"
    http_status = 422


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: Role
    created_at: datetime
    last_login_at: datetime | None

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "role": self.role.value,
            "created_at": self.created_at,
            "last_login_at": self.last_login_at,
        }


@dataclass(frozen=True)
class ApiKey:
    id: int
    name: str
    role: Role
    prefix: str
    created_at: datetime
    last_used_at: datetime | None

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "role": self.role.value,
            "prefix": f"{KEY_PREFIX}_{self.prefix}",
            "created_at": self.created_at,
            "last_used_at": self.last_used_at,
        }


def _check_name(name: str, what: str) -> str:
    pattern, signs = (USER_NAME, "'.', '_', '@', '+'") if what == "user" else (KEY_NAME, "'.', '_'")
    if not pattern.fullmatch(name):
        raise InvalidName(
            f"The {what} name {name!r} is not valid: use 1 to 64 ASCII letters, digits, {signs} "
            "or '-', starting with a letter or digit."
        )
    return name


def parse_role(value: str, *, for_key: bool) -> Role:
    """The role named ``value``, or one clear error listing the allowed roles."""
    allowed = KEY_ROLES if for_key else USER_ROLES
    for role in allowed:
        if role.value == value:
            return role
    names = ", ".join(r.value for r in allowed)
    raise InvalidName(f"Unknown role {value!r}: use one of {names}.")


def generate_password() -> str:
    """A random password of 20 URL-safe characters (120 bits)."""
    return secrets.token_urlsafe(15)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidName(f"The password must be at least {MIN_PASSWORD_LENGTH} characters long.")


def user_from_row(row: object) -> User:
    return User(
        id=row.id,  # type: ignore[attr-defined]
        name=row.name,  # type: ignore[attr-defined]
        role=Role(row.role),  # type: ignore[attr-defined]
        created_at=row.created_at,  # type: ignore[attr-defined]
        last_login_at=row.last_login_at,  # type: ignore[attr-defined]
    )


def _key(row: object) -> ApiKey:
    return ApiKey(
        id=row.id,  # type: ignore[attr-defined]
        name=row.name,  # type: ignore[attr-defined]
        role=Role(row.role),  # type: ignore[attr-defined]
        prefix=row.prefix,  # type: ignore[attr-defined]
        created_at=row.created_at,  # type: ignore[attr-defined]
        last_used_at=row.last_used_at,  # type: ignore[attr-defined]
    )


async def count_users(db: Database) -> int:
    async with db.read() as session:
        return int((await session.execute(select(func.count()).select_from(users))).scalar_one())


async def add_user(
    db: Database, name: str, role: Role, *, actor: str, password: str | None = None
) -> tuple[User, str]:
    """Create a user; returns it and its password (generated unless given), to show once."""
    _check_name(name, "user")
    if role not in USER_ROLES:
        raise InvalidName(f"Users cannot have the role {role.value!r}; it is for API keys only.")
    if password is None:
        password = generate_password()
    else:
        _check_password(password)
    password_hash = hash_password(password)
    now = utcnow()
    try:
        async with db.write() as session:
            existing = await session.execute(select(users.c.id).where(users.c.name == name))
            if existing.first() is not None:
                raise ConflictError(f"A user named {name!r} already exists.")
            await session.execute(
                users.insert().values(
                    name=name,
                    role=role.value,
                    password_hash=password_hash,
                    created_at=now,
                    password_changed_at=now,
                )
            )
            await record_in(session, actor, "user.add", name, {"role": role.value})
    except IntegrityError:
        raise ConflictError(f"A user named {name!r} already exists.") from None
    user = await get_user(db, name)
    return user, password


async def get_user(db: Database, name: str) -> User:
    async with db.read() as session:
        row = (await session.execute(select(users).where(users.c.name == name))).first()
    if row is None:
        raise NotFoundError(f"There is no user named {name!r}.")
    return user_from_row(row)


async def get_user_by_id(db: Database, user_id: int) -> User | None:
    async with db.read() as session:
        row = (await session.execute(select(users).where(users.c.id == user_id))).first()
    return None if row is None else user_from_row(row)


async def list_users(db: Database) -> list[User]:
    async with db.read() as session:
        rows = (await session.execute(select(users).order_by(users.c.name))).all()
    return [user_from_row(row) for row in rows]


async def delete_user(db: Database, name: str, *, actor: str) -> None:
    """Delete a user and end their sessions; the last admin cannot be deleted."""
    async with db.write() as session:
        row = (await session.execute(select(users).where(users.c.name == name))).first()
        if row is None:
            raise NotFoundError(f"There is no user named {name!r}.")
        if row.role == Role.ADMIN.value:
            admins = await session.execute(
                select(func.count()).select_from(users).where(users.c.role == Role.ADMIN.value)
            )
            if admins.scalar_one() <= 1:
                raise ConflictError(f"{name!r} is the last admin and cannot be deleted.")
        await session.execute(delete(web_sessions).where(web_sessions.c.user_id == row.id))
        await session.execute(delete(users).where(users.c.id == row.id))
        await record_in(session, actor, "user.delete", name)


async def reset_password(
    db: Database, name: str, *, actor: str, password: str | None = None
) -> str:
    """Give the user a new password (generated unless given) and end their sessions."""
    if password is None:
        password = generate_password()
    else:
        _check_password(password)
    password_hash = hash_password(password)
    async with db.write() as session:
        row = (await session.execute(select(users.c.id).where(users.c.name == name))).first()
        if row is None:
            raise NotFoundError(f"There is no user named {name!r}.")
        await session.execute(
            update(users)
            .where(users.c.id == row.id)
            .values(password_hash=password_hash, password_changed_at=utcnow())
        )
        await session.execute(delete(web_sessions).where(web_sessions.c.user_id == row.id))
        await record_in(session, actor, "user.reset_password", name)
    return password


async def authenticate(db: Database, name: str, password: str) -> User | None:
    """The user when ``password`` is theirs, else None (same cost either way)."""
    async with db.read() as session:
        row = (await session.execute(select(users).where(users.c.name == name))).first()
    stored = row.password_hash if row is not None else _dummy_hash()
    try:
        _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if row is None:
        return None
    async with db.write() as session:
        await session.execute(
            update(users).where(users.c.id == row.id).values(last_login_at=utcnow())
        )
        if _hasher.check_needs_rehash(stored):
            await session.execute(
                update(users)
                .where(users.c.id == row.id)
                .values(password_hash=hash_password(password))
            )
    return user_from_row(row)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


async def create_api_key(db: Database, name: str, role: Role, *, actor: str) -> tuple[ApiKey, str]:
    """Create a key; returns it and the key text, which is shown once and never stored."""
    _check_name(name, "API key")
    prefix = secrets.token_hex(4)
    key = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    try:
        async with db.write() as session:
            existing = await session.execute(select(api_keys.c.id).where(api_keys.c.name == name))
            if existing.first() is not None:
                raise ConflictError(f"An API key named {name!r} already exists.")
            await session.execute(
                api_keys.insert().values(
                    name=name,
                    role=role.value,
                    prefix=prefix,
                    key_hash=_digest(key),
                    created_at=utcnow(),
                )
            )
            await record_in(session, actor, "apikey.create", name, {"role": role.value})
    except IntegrityError:
        raise ConflictError(f"An API key named {name!r} already exists.") from None
    async with db.read() as session:
        row = (await session.execute(select(api_keys).where(api_keys.c.name == name))).one()
    return _key(row), key


async def list_api_keys(db: Database) -> list[ApiKey]:
    async with db.read() as session:
        rows = (await session.execute(select(api_keys).order_by(api_keys.c.name))).all()
    return [_key(row) for row in rows]


async def revoke_api_key(db: Database, name: str, *, actor: str) -> None:
    async with db.write() as session:
        result = await session.execute(delete(api_keys).where(api_keys.c.name == name))
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise NotFoundError(f"There is no API key named {name!r}.")
        await record_in(session, actor, "apikey.revoke", name)


async def lookup_api_key(db: Database, key: str) -> ApiKey | None:
    """The key's record when ``key`` is a valid key, else None."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != 8:
        return None
    async with db.read() as session:
        row = (await session.execute(select(api_keys).where(api_keys.c.prefix == parts[1]))).first()
    if row is None or not hmac.compare_digest(row.key_hash, _digest(key)):
        return None
    return _key(row)


async def touch_api_key(db: Database, key_id: int) -> None:
    """Record that a key was used (called at most once a minute per key by the web layer)."""
    async with db.write() as session:
        await session.execute(
            update(api_keys).where(api_keys.c.id == key_id).values(last_used_at=utcnow())
        )
