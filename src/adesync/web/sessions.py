"""Console sessions: a random id in a signed cookie, its hash in ``web_sessions`` with the
session's CSRF secret (issued here, a new one at every sign-in).

The signing key lives sealed in ``web_secrets`` (so every ``serve`` process sharing the
database shares it, and ``secrets rotate`` re-seals it). A session ends when it expires, on
sign-out, or when the user's password is reset or the user is deleted.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer, URLSafeTimedSerializer
from sqlalchemy import Select, bindparam, delete, select
from sqlalchemy.exc import IntegrityError

from adesync.store.database import Database
from adesync.store.keycheck import hold_key
from adesync.store.secrets import SecretBox
from adesync.store.tables_web import users, web_secrets, web_sessions
from adesync.store.types import UTCDateTime, utcnow
from adesync.web.accounts import User, user_from_row

__all__ = [
    "PRESESSION_LIFETIME",
    "SESSION_LIFETIME",
    "CookieSigner",
    "LiveSession",
    "end_session",
    "load_signer",
    "resolve_session",
    "start_session",
]

SESSION_LIFETIME = timedelta(hours=12)
# How long a sign-in form stays usable: its CSRF secret lives in a signed, dated cookie.
PRESESSION_LIFETIME = timedelta(hours=1)
SIGNING_KEY_NAME = "session_signing_key"


class CookieSigner:
    """Signs session ids and pre-session secrets, and derives CSRF tokens, with one key."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._serializer = URLSafeSerializer(key, salt="adesync-session")
        self._dated = URLSafeTimedSerializer(key, salt="adesync-presession")

    def sign(self, value: str) -> str:
        return str(self._serializer.dumps(value))

    def unsign(self, signed: str) -> str | None:
        try:
            value = self._serializer.loads(signed)
        except BadSignature:
            return None
        return value if isinstance(value, str) else None

    def new_presession(self) -> str:
        """A signed, dated cookie value holding a new pre-session CSRF secret."""
        return str(self._dated.dumps(secrets.token_urlsafe(24)))

    def presession_secret(self, signed: str) -> str | None:
        """The secret of a pre-session cookie this installation issued less than
        ``PRESESSION_LIFETIME`` ago, else None."""
        try:
            value = self._dated.loads(signed, max_age=int(PRESESSION_LIFETIME.total_seconds()))
        except BadSignature:  # also SignatureExpired
            return None
        return value if isinstance(value, str) else None

    def csrf_token(self, secret: str) -> str:
        """The form token of a session's (or pre-session's) CSRF ``secret``."""
        return hmac.new(self._key, b"csrf:" + secret.encode(), hashlib.sha256).hexdigest()[:40]

    def csrf_valid(self, secret: str | None, token: str | None) -> bool:
        if not secret or not token:
            return False
        return hmac.compare_digest(self.csrf_token(secret), token)


async def load_signer(db: Database, box: SecretBox) -> CookieSigner:
    """The installation's cookie signer, creating its key on first use."""
    async with db.read() as session:
        sealed = (
            await session.execute(
                select(web_secrets.c.value).where(web_secrets.c.name == SIGNING_KEY_NAME)
            )
        ).scalar()
    if sealed is None:
        try:
            async with db.write() as session:
                await hold_key(session, box)
                await session.execute(
                    web_secrets.insert().values(
                        name=SIGNING_KEY_NAME, value=box.seal(secrets.token_bytes(32))
                    )
                )
        except IntegrityError:  # another process created it first
            pass
        return await load_signer(db, box)
    return CookieSigner(box.open(sealed))


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass(frozen=True)
class LiveSession:
    """A session that has not expired: its user and its CSRF secret."""

    user: User
    csrf_secret: str


async def start_session(db: Database, user: User) -> str:
    """Create a session for ``user`` with a new CSRF secret; returns its id (to sign into the
    cookie)."""
    session_id = secrets.token_urlsafe(32)
    now = utcnow()
    async with db.write() as session:
        await session.execute(delete(web_sessions).where(web_sessions.c.expires_at < now))
        await session.execute(
            web_sessions.insert().values(
                id_hash=_hash(session_id),
                user_id=user.id,
                created_at=now,
                expires_at=now + SESSION_LIFETIME,
                csrf_secret=secrets.token_urlsafe(32),
            )
        )
    return session_id


@functools.cache
def _session_user() -> Select[Any]:
    # Built once: the user's shown fields (not the password hash) and the session's CSRF
    # secret, by session hash and time.
    return (
        select(
            users.c.id,
            users.c.name,
            users.c.role,
            users.c.created_at,
            users.c.last_login_at,
            web_sessions.c.csrf_secret,
        )
        .join(web_sessions, web_sessions.c.user_id == users.c.id)
        .where(web_sessions.c.id_hash == bindparam("id_hash"))
        .where(web_sessions.c.expires_at > bindparam("now", type_=UTCDateTime))
    )


async def resolve_session(db: Database, session_id: str) -> LiveSession | None:
    """The live session ``session_id`` names, or None."""
    async with db.read() as session:
        row = (
            await session.execute(_session_user(), {"id_hash": _hash(session_id), "now": utcnow()})
        ).first()
    return None if row is None else LiveSession(user_from_row(row), row.csrf_secret)


async def end_session(db: Database, session_id: str) -> None:
    async with db.write() as session:
        await session.execute(
            delete(web_sessions).where(web_sessions.c.id_hash == _hash(session_id))
        )
