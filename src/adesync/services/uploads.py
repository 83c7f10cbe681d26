"""Adding and renewing a server token: decrypt the ``.p7m`` ABM/ASM made for the token's key,
prove it with Apple (``verify``: ``/session`` + ``/account``), store it, and re-evaluate health.

What a fix clears is decided here, once, for every door: storing new credentials clears the
flags Apple set on the old ones, resets the failure streak, makes the next sync due now with
the manual-sync allowance whole (``token_repo.store_credentials``), and health is evaluated
before the action returns (for the token, and for the tokens that shared its MDM server).
Without ``verify`` the token is stored with its identity unverified (``identity_verified_at``
null); a refusal by Apple stores nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from adesync.health.jobs import evaluate_after_sync
from adesync.services.keypairs import Slot, load_keypair
from adesync.services.token_errors import (
    DifferentServer,
    DuplicateServer,
    KeyPairMissing,
    TokenAlreadyAdded,
    TokenChanged,
    TokenFileExpired,
    TokenFileForeign,
    TokenFileInvalid,
    TokenNotAdded,
    TokenNotFound,
)
from adesync.services.token_model import (
    DEFAULT_DEP_URL,
    DEFAULT_TOKEN_TYPE,
    AccountIdentity,
    TokenDocument,
    TokenRow,
    Verify,
    check_dep_url,
    check_file_size,
    check_name,
    check_new_name,
    check_token_type,
    token_document,
)
from adesync.store import token_repo
from adesync.store.database import Database
from adesync.store.keycheck import hold_key
from adesync.store.secrets import SecretBox
from adesync.store.types import utcnow
from adesync.tokens import (
    DamagedTokenFile,
    DecryptedToken,
    ForeignTokenFile,
    KeyPair,
    TokenPayload,
    open_token_file,
)

log = logging.getLogger(__name__)

__all__ = ["TokenStored", "add_token", "open_credentials", "renew_token", "seed_token"]


@dataclass(frozen=True)
class TokenStored:
    """The outcome of add/renew: the stored token and what ``force`` let through."""

    token: TokenDocument
    identity_verified: bool
    key_promoted: bool
    content_cipher: str
    warnings: tuple[str, ...] = ()  # finding codes, e.g. duplicate_server
    duplicate_of: tuple[str, ...] = field(default=())


def _decrypt(box: SecretBox, row: TokenRow, data: bytes) -> tuple[DecryptedToken, Slot]:
    """Decrypt with the pending key, then the active one; errors become one sentence each."""
    check_file_size(data)
    name = row["name"]
    keys: list[tuple[Slot, KeyPair]] = []
    slots: tuple[Slot, ...] = ("pending", "active")
    for slot in slots:
        keypair = load_keypair(box, row, slot)
        if keypair is not None:
            keys.append((slot, keypair))
    if not keys:
        raise KeyPairMissing(name)
    try:
        decrypted = open_token_file(data, [keypair for _, keypair in keys])
    except ForeignTokenFile:
        raise TokenFileForeign(name) from None
    except DamagedTokenFile:
        raise TokenFileInvalid() from None
    slot = next(slot for slot, keypair in keys if keypair is decrypted.keypair)
    # Which cipher ABM/ASM uses today is not documented; the log settles it for real tokens.
    log.info("token file for %s opened with its %s key (%s)", name, slot, decrypted.content_cipher)
    return decrypted, slot


def _refuse_expired(payload: TokenPayload, now: datetime) -> None:
    if payload.is_expired(now):
        raise TokenFileExpired(payload.access_token_expiry)


def open_credentials(box: SecretBox, row: TokenRow) -> TokenPayload | None:
    """The stored OAuth values of a token row (None before its first ``.p7m``)."""
    sealed = row["oauth_credentials"]
    if sealed is None:
        return None
    return TokenPayload.from_json(box.open_text(bytes(sealed)))


async def _store(
    db: Database,
    box: SecretBox,
    row: RowMapping,
    decrypted: DecryptedToken,
    slot: Slot,
    *,
    identity: AccountIdentity | None,
    event: Literal["added", "renewed"],
    force: bool,
    now: datetime,
    warnings: list[str],
    dep_url: str | None = None,
    token_type: str | None = None,
) -> TokenStored:
    name = row["name"]
    async with db.write() as session:
        await hold_key(session, box)
        current = await token_repo.get_token(session, name, for_update=True)
        if (
            current is None
            or current[f"{slot}_private_key"] != row[f"{slot}_private_key"]
            or (current["oauth_credentials"] is None) != (row["oauth_credentials"] is None)
        ):
            raise TokenChanged(name)
        duplicates: list[str] = []
        if identity is not None:
            duplicates = await token_repo.names_holding_server(
                session, identity.server_uuid, except_token_id=row["id"]
            )
            if duplicates and not force:
                raise DuplicateServer(duplicates[0], identity.server_uuid, identity.server_name)
            if duplicates:
                warnings.append("duplicate_server")
        await token_repo.store_credentials(
            session,
            row["id"],
            sealed_credentials=box.seal_text(decrypted.payload.to_json()),
            access_token_expiry=decrypted.payload.access_token_expiry,
            identity=identity.columns() if identity is not None else None,
            event=event,
            now=now,
            dep_url=dep_url,
            token_type=token_type,
        )
        if slot == "pending":
            await token_repo.promote_pending(session, row["id"], now=now)
        servers = {row["server_uuid"], identity.server_uuid if identity is not None else None}
        affected = await token_repo.ids_holding_servers(session, servers - {None})
    # The verdict follows the fix before the action returns (and the tokens that shared the
    # MDM server lose or gain duplicate_server).
    await evaluate_after_sync(db, box, sorted({row["id"], *affected}))
    async with db.read() as session:
        document = await _document(session, name)
    return TokenStored(
        token=document,
        identity_verified=identity is not None,
        key_promoted=slot == "pending",
        content_cipher=decrypted.content_cipher,
        warnings=tuple(warnings),
        duplicate_of=tuple(duplicates),
    )


async def _document(session: AsyncSession, name: str) -> TokenDocument:
    row = await token_repo.get_token(session, name)
    assert row is not None
    return token_document(row)


async def add_token(
    db: Database,
    box: SecretBox,
    name: str,
    data: bytes,
    *,
    dep_url: str | None = None,
    token_type: str | None = None,
    force: bool = False,
    verify: Verify | None = None,
    now: datetime | None = None,
) -> TokenStored:
    """Decrypt the ``.p7m`` made for token ``name``'s key, check it, and store it.

    Refused (nothing changes): no key pair yet, the token already holds credentials, a bad or
    foreign file, an expired token, and — once ``verify`` tells the MDM server — a server
    another token holds, unless ``force`` (then ``duplicate_server`` is in ``warnings``).
    """
    check_name(name)
    dep_url = check_dep_url(dep_url)
    token_type = check_token_type(token_type) or DEFAULT_TOKEN_TYPE
    now = now or utcnow()
    async with db.read() as session:
        row = await token_repo.get_token(session, name)
    if row is None:
        raise KeyPairMissing(name)
    if row["oauth_credentials"] is not None:
        raise TokenAlreadyAdded(name, holds_token=True)
    decrypted, slot = _decrypt(box, row, data)
    _refuse_expired(decrypted.payload, now)
    identity = await verify(decrypted.payload, dep_url) if verify is not None else None
    return await _store(
        db,
        box,
        row,
        decrypted,
        slot,
        identity=identity,
        event="added",
        force=force,
        now=now,
        warnings=[],
        dep_url=dep_url,
        token_type=token_type,
    )


async def renew_token(
    db: Database,
    box: SecretBox,
    name: str,
    data: bytes,
    *,
    force: bool = False,
    verify: Verify | None = None,
    now: datetime | None = None,
) -> TokenStored:
    """Replace token ``name``'s credentials with those of a newer ``.p7m``.

    Besides add's checks, a file with a different consumer key, or (once verified) a different
    MDM server, is refused unless ``force`` (then ``different_server`` is in ``warnings``).
    """
    check_name(name)
    now = now or utcnow()
    async with db.read() as session:
        row = await token_repo.get_token(session, name)
    if row is None:
        raise TokenNotFound(name)
    stored = open_credentials(box, row)
    if stored is None:
        raise TokenNotAdded(name)
    decrypted, slot = _decrypt(box, row, data)
    _refuse_expired(decrypted.payload, now)
    warnings: list[str] = []
    if decrypted.payload.consumer_key != stored.consumer_key:
        if not force:
            raise DifferentServer(name, reason="consumer_key")
        warnings.append("different_server")
    identity = await verify(decrypted.payload, row["dep_url"]) if verify is not None else None
    if (
        identity is not None
        and row["server_uuid"] is not None
        and identity.server_uuid != row["server_uuid"]
        and "different_server" not in warnings
    ):
        if not force:
            raise DifferentServer(
                name,
                reason="server_uuid",
                new_server=identity.server_uuid,
                old_server=row["server_uuid"],
            )
        warnings.append("different_server")
    return await _store(
        db,
        box,
        row,
        decrypted,
        slot,
        identity=identity,
        event="renewed",
        force=force,
        now=now,
        warnings=warnings,
    )


async def seed_token(
    db: Database,
    box: SecretBox,
    name: str,
    payload: TokenPayload,
    keypair: KeyPair,
    *,
    dep_url: str = DEFAULT_DEP_URL,
    token_type: str = DEFAULT_TOKEN_TYPE,
    identity: AccountIdentity | None = None,
    now: datetime | None = None,
) -> TokenDocument:
    """Store a token straight from the library, without the checks of ``add`` (expired tokens
    included): for the demo and for tests that need tokens in given states."""
    check_new_name(name)
    now = now or utcnow()
    async with db.write() as session:
        await hold_key(session, box)
        token_id = await token_repo.create_token(
            session, name=name, dep_url=dep_url, token_type=token_type, now=now
        )
        await token_repo.set_pending_keypair(
            session,
            token_id,
            sealed_private_key=box.seal(keypair.private_key_pem()),
            certificates_pem=keypair.certificates_pem(),
            now=now,
        )
        await token_repo.promote_pending(session, token_id, now=now)
        await token_repo.store_credentials(
            session,
            token_id,
            sealed_credentials=box.seal_text(payload.to_json()),
            access_token_expiry=payload.access_token_expiry,
            identity=identity.columns() if identity is not None else None,
            event="added",
            now=now,
        )
        return await _document(session, name)
