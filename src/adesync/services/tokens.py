"""Server tokens: key pair, add, renew, list, show and delete (shared by CLI and web API).

A token row is created by ``keypair`` with a *pending* key pair; ``add`` decrypts the ``.p7m``
ABM/ASM made for it, and once that token is accepted the pending key becomes the *active* one.
Until then an earlier active key keeps decrypting (renewal). Apple's ``/account`` check is a
``verify`` callable the ADE client supplies; without one the token is stored with its identity
unverified (``identity_verified_at`` null).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

from cryptography import x509
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from adesync.errors import AdesyncError, ConflictError, NotFoundError
from adesync.store import token_repo
from adesync.store.database import Database
from adesync.store.secrets import SecretBox
from adesync.store.types import utcnow
from adesync.tokens import (
    MAX_TOKEN_FILE_BYTES,
    DamagedTokenFile,
    DecryptedToken,
    ForeignTokenFile,
    KeyPair,
    KeyPairError,
    TokenPayload,
    fingerprint,
    generate_keypair,
    open_token_file,
)

log = logging.getLogger(__name__)

DEFAULT_DEP_URL = "https://mdmenrollment.apple.com"
TOKEN_TYPES = ("abm", "asm")
DEFAULT_TOKEN_TYPE = TOKEN_TYPES[0]
# A certificate this close to its end is re-issued for the same key when it is handed out.
CERTIFICATE_REISSUE_WITHIN = timedelta(days=60)
_NAME = re.compile(r"^\w[\w.-]{0,99}$")

Slot = Literal["pending", "active"]
TokenDocument = dict[str, Any]
# A row of the tokens table as SQLAlchemy returns it (keys are column names).
TokenRow = Mapping[Any, Any]


# -- errors ---------------------------------------------------------------------------------


class TokenNameInvalid(AdesyncError):
    code = "token_name_invalid"


class TokenNotFound(NotFoundError):
    code = "token_not_found"


class KeyPairMissing(NotFoundError):
    code = "keypair_missing"


class KeyPairDamaged(AdesyncError):
    code = "keypair_damaged"


class TokenFileInvalid(AdesyncError):
    """The file is damaged or is not an ABM/ASM server token (every failure but a foreign key)."""

    code = "token_file_invalid"


class TokenFileForeign(AdesyncError):
    """The file was encrypted to a certificate that is not one of this token's keys."""

    code = "token_file_foreign"


class TokenFileExpired(AdesyncError):
    code = "token_expired"


class TokenAlreadyAdded(ConflictError):
    code = "token_exists"


class TokenNotAdded(ConflictError):
    code = "token_not_added"


class DuplicateServer(ConflictError):
    code = "duplicate_server"


class DifferentServer(ConflictError):
    code = "different_server"


class TokenChanged(ConflictError):
    code = "token_changed"


class OptionInvalid(AdesyncError):
    code = "option_invalid"


# -- what callers get back ------------------------------------------------------------------


@dataclass(frozen=True)
class AccountIdentity:
    """The MDM server and organisation behind a token, as Apple's ``/account`` reports them."""

    server_uuid: str
    server_name: str | None = None
    org_name: str | None = None
    org_email: str | None = None
    org_phone: str | None = None
    org_address: str | None = None
    org_id: str | None = None
    org_id_hash: str | None = None
    org_type: str | None = None
    org_version: str | None = None
    admin_id: str | None = None

    def columns(self) -> dict[str, str | None]:
        return asdict(self)


Verify = Callable[[TokenPayload, str], Awaitable[AccountIdentity]]
"""Asks Apple who a token belongs to: ``(credentials, dep_url) -> AccountIdentity``.

It raises an AdesyncError (one sentence) to refuse the token; nothing is stored then.
"""


@dataclass(frozen=True)
class KeypairCertificate:
    """The certificate to upload to ABM/ASM for a token, and how it came about."""

    name: str
    certificate_pem: str
    slot: Slot
    created: bool  # a new key pair was generated
    reissued: bool  # a new certificate was issued for the existing key
    not_after: datetime
    has_token: bool  # the token already holds credentials (so the next step is renew)


@dataclass(frozen=True)
class TokenStored:
    """The outcome of add/renew: the stored token and what ``force`` let through."""

    token: TokenDocument
    identity_verified: bool
    key_promoted: bool
    content_cipher: str
    warnings: tuple[str, ...] = ()  # finding codes, e.g. duplicate_server
    duplicate_of: tuple[str, ...] = field(default=())


# -- the one row-to-document mapping --------------------------------------------------------


def token_document(row: TokenRow) -> TokenDocument:
    """A token as listings and the API show it (never a secret). Fields other features own
    (state, sync times, default profile) are null until they fill them; ``device_count`` counts
    live devices when the row was read with it (see ``token_repo.device_count_column``)."""
    return {
        "name": row["name"],
        "status": "installed" if row["oauth_credentials"] is not None else "waiting_for_p7m",
        "state": row["state"],
        "state_reason": row["state_reason"],
        "token_type": row["token_type"],
        "expires_at": row["access_token_expiry"],
        "org_name": row["org_name"],
        "server_name": row["server_name"],
        "server_uuid": row["server_uuid"],
        "admin_id": row["admin_id"],
        "dep_url": row["dep_url"],
        "last_sync_at": row["last_sync_at"],
        "last_successful_sync_at": row["last_successful_sync_at"],
        "last_error_code": row["last_error_code"],
        "device_count": row.get("device_count"),
        "default_profile_uuid": row["default_profile_uuid"],
        "identity_verified_at": row["identity_verified_at"],
        "added_at": row["token_added_at"],
        "renewed_at": row["token_renewed_at"],
        "keypair_pending": row["pending_private_key"] is not None,
    }


# -- checks on what a person typed ----------------------------------------------------------


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise TokenNameInvalid(
            f"{name!r} is not a usable token name: use up to 100 letters, digits, '.', '_' or "
            "'-', starting with a letter or digit."
        )
    return name


def check_dep_url(url: str | None, field: str = "--dep-url") -> str:
    """``url`` normalised (Apple's default if None); ``field`` names it in the error (the CLI
    option, or the API and form field)."""
    if url is None:
        return DEFAULT_DEP_URL
    parts = urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname or len(url) > 500:
        raise OptionInvalid(f"{field} {url!r} is not an http(s) URL such as {DEFAULT_DEP_URL}.")
    return url.strip().rstrip("/")


def check_token_type(token_type: str | None, field: str = "--type") -> str | None:
    if token_type is not None and token_type not in TOKEN_TYPES:
        raise OptionInvalid(f"{field} {token_type!r} is not one of: abm, asm.")
    return token_type


def check_file_size(data: bytes) -> None:
    if not data or len(data) > MAX_TOKEN_FILE_BYTES:
        raise TokenFileInvalid(_damaged_message())


# -- key pairs ------------------------------------------------------------------------------


def _load_keypair(box: SecretBox, row: TokenRow, slot: Slot) -> KeyPair | None:
    sealed = row[f"{slot}_private_key"]
    if sealed is None:
        return None
    try:
        return KeyPair.from_pem(box.open(bytes(sealed)), row[f"{slot}_certificates"] or "")
    except KeyPairError:
        raise KeyPairDamaged(
            f"The {slot} key pair of token {row['name']} cannot be read; create a new one with "
            f"`adesync tokens keypair {row['name']} --new`."
        ) from None


async def _store_new_pending(
    db: Database,
    box: SecretBox,
    name: str,
    keypair: KeyPair,
    *,
    replace: bool,
    now: datetime,
    dep_url: str,
    token_type: str,
) -> bool:
    """Store ``keypair`` as the pending key of ``name`` (creating the row, with ``dep_url`` and
    ``token_type``); False if another process gave the token a key in the meantime and
    ``replace`` is off."""
    async with db.write() as session:
        row = await token_repo.get_token(session, name, for_update=True)
        if row is None:
            token_id = await token_repo.create_token(
                session, name=name, dep_url=dep_url, token_type=token_type, now=now
            )
        elif replace or (row["pending_private_key"] is None and row["active_private_key"] is None):
            token_id = row["id"]
        else:
            return False
        await token_repo.set_pending_keypair(
            session,
            token_id,
            sealed_private_key=box.seal(keypair.private_key_pem()),
            certificates_pem=keypair.certificates_pem(),
            now=now,
        )
    return True


async def keypair_certificate(
    db: Database,
    box: SecretBox,
    name: str,
    *,
    new: bool = False,
    now: datetime | None = None,
    dep_url: str = DEFAULT_DEP_URL,
    token_type: str = DEFAULT_TOKEN_TYPE,
) -> KeypairCertificate:
    """The PEM certificate to upload to ABM/ASM for token ``name``.

    A new name gets a pending key pair, in a token created with ``dep_url`` and ``token_type``
    in the same transaction (an existing token keeps its own). An existing token hands out its
    pending certificate if it has one, else its active one (renewal reuses the key pair);
    ``new`` makes a fresh pending key pair instead. A certificate within 60 days of its end is
    re-issued for the same key and remembered beside the earlier ones.
    """
    check_name(name)
    now = now or utcnow()
    async with db.read() as session:
        row = await token_repo.get_token(session, name)
    has_key = row is not None and (
        row["pending_private_key"] is not None or row["active_private_key"] is not None
    )
    if new or not has_key:
        keypair = generate_keypair(name, now=now)
        stored = await _store_new_pending(
            db, box, name, keypair, replace=new, now=now, dep_url=dep_url, token_type=token_type
        )
        if stored:
            return KeypairCertificate(
                name=name,
                certificate_pem=keypair.certificate_pem(),
                slot="pending",
                created=True,
                reissued=False,
                not_after=keypair.certificate.not_valid_after_utc,
                has_token=row is not None and row["oauth_credentials"] is not None,
            )
        async with db.read() as session:
            row = await token_repo.get_token(session, name)
    assert row is not None
    return await _current_certificate(db, box, row, now=now)


async def _current_certificate(
    db: Database, box: SecretBox, row: RowMapping, *, now: datetime
) -> KeypairCertificate:
    slot: Slot = "pending" if row["pending_private_key"] is not None else "active"
    keypair = _load_keypair(box, row, slot)
    assert keypair is not None
    reissued = keypair.certificate.not_valid_after_utc - now < CERTIFICATE_REISSUE_WITHIN
    if reissued:
        keypair = keypair.with_new_certificate(row["name"], now=now)
        async with db.write() as session:
            current = await token_repo.get_token(session, row["name"], for_update=True)
            columns = (f"{slot}_private_key", f"{slot}_certificates")
            if current is None or any(current[c] != row[c] for c in columns):
                raise _changed(row["name"])
            await token_repo.set_certificates(
                session, row["id"], slot, keypair.certificates_pem(), now=now
            )
    return KeypairCertificate(
        name=row["name"],
        certificate_pem=keypair.certificate_pem(),
        slot=slot,
        created=False,
        reissued=reissued,
        not_after=keypair.certificate.not_valid_after_utc,
        has_token=row["oauth_credentials"] is not None,
    )


# -- add and renew --------------------------------------------------------------------------


def _damaged_message() -> str:
    return (
        "This file is damaged or is not an ABM/ASM server token; download the token again "
        "from the MDM server in ABM/ASM (a file ending in _smime.p7m)."
    )


def _changed(name: str) -> TokenChanged:
    return TokenChanged(f"Token {name} was changed by another command meanwhile; run it again.")


def _decrypt(box: SecretBox, row: TokenRow, data: bytes) -> tuple[DecryptedToken, Slot]:
    """Decrypt with the pending key, then the active one; errors become one sentence each."""
    check_file_size(data)
    name = row["name"]
    keys: list[tuple[Slot, KeyPair]] = []
    slots: tuple[Slot, ...] = ("pending", "active")
    for slot in slots:
        keypair = _load_keypair(box, row, slot)
        if keypair is not None:
            keys.append((slot, keypair))
    if not keys:
        raise KeyPairMissing(_no_keypair_message(name))
    try:
        decrypted = open_token_file(data, [keypair for _, keypair in keys])
    except ForeignTokenFile:
        raise TokenFileForeign(
            f"This token was made for another MDM server's key: upload the certificate that "
            f"`adesync tokens keypair {name}` writes to the MDM server in ABM/ASM, then download "
            "its token again."
        ) from None
    except DamagedTokenFile:
        raise TokenFileInvalid(_damaged_message()) from None
    slot = next(slot for slot, keypair in keys if keypair is decrypted.keypair)
    # Which cipher ABM/ASM uses today is not documented; the log settles it for real tokens.
    log.info("token file for %s opened with its %s key (%s)", name, slot, decrypted.content_cipher)
    return decrypted, slot


def _not_found(name: str) -> TokenNotFound:
    return TokenNotFound(f"There is no token called {name}; `adesync tokens list --all` lists all.")


def _no_keypair_message(name: str) -> str:
    return (
        f"Token {name} has no key pair yet: run `adesync tokens keypair {name}`, upload the "
        "certificate to the MDM server in ABM/ASM, then add the token file it gives you."
    )


def _refuse_expired(payload: TokenPayload, now: datetime) -> None:
    if payload.is_expired(now):
        when = payload.access_token_expiry.strftime("%Y-%m-%d %H:%M UTC")
        raise TokenFileExpired(
            f"This token expired on {when}; download a new token from the MDM server in ABM/ASM."
        )


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
        current = await token_repo.get_token(session, name, for_update=True)
        if (
            current is None
            or current[f"{slot}_private_key"] != row[f"{slot}_private_key"]
            or (current["oauth_credentials"] is None) != (row["oauth_credentials"] is None)
        ):
            raise _changed(name)
        duplicates: list[str] = []
        if identity is not None:
            duplicates = await token_repo.names_holding_server(
                session, identity.server_uuid, except_token_id=row["id"]
            )
            if duplicates and not force:
                raise DuplicateServer(
                    f"Token {duplicates[0]} already holds MDM server {identity.server_uuid} "
                    f"({identity.server_name or 'unnamed'}); only the newest token of a server "
                    f"works, so renew {duplicates[0]} instead, or pass --force to keep both."
                )
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
        raise KeyPairMissing(_no_keypair_message(name))
    if row["oauth_credentials"] is not None:
        raise TokenAlreadyAdded(
            f"Token {name} already holds a server token; use `adesync tokens renew {name} "
            "--p7m FILE` to replace it."
        )
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
        raise _not_found(name)
    stored = open_credentials(box, row)
    if stored is None:
        raise TokenNotAdded(
            f"Token {name} holds no server token yet; use `adesync tokens add {name} --p7m FILE`."
        )
    decrypted, slot = _decrypt(box, row, data)
    _refuse_expired(decrypted.payload, now)
    warnings: list[str] = []
    if decrypted.payload.consumer_key != stored.consumer_key:
        if not force:
            raise DifferentServer(
                f"This token file has another consumer key than token {name}, so it belongs to "
                "a different MDM server (or was downloaded by another ABM/ASM user); pass "
                "--force to replace the token anyway."
            )
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
                f"This token file is for MDM server {identity.server_uuid}, but token {name} "
                f"belongs to MDM server {row['server_uuid']}; pass --force to replace it anyway."
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
    check_name(name)
    now = now or utcnow()
    async with db.write() as session:
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


# -- list, show, delete ---------------------------------------------------------------------


async def list_tokens(db: Database, *, include_waiting: bool = False) -> list[TokenDocument]:
    """Tokens holding credentials, by name; ``include_waiting`` adds key pairs waiting for their
    first ``.p7m`` (``status`` ``waiting_for_p7m``)."""
    async with db.read() as session:
        rows = await token_repo.list_tokens(session, include_waiting=include_waiting)
    return [token_document(row) for row in rows]


async def _get(session: AsyncSession, name: str) -> RowMapping:
    check_name(name)
    row = await token_repo.get_token(session, name)
    if row is None:
        raise _not_found(name)
    return row


def _keypair_document(row: TokenRow, slot: Slot) -> dict[str, Any] | None:
    if row[f"{slot}_private_key"] is None:
        return None
    try:
        certs = x509.load_pem_x509_certificates((row[f"{slot}_certificates"] or "").encode())
    except ValueError:
        certs = []
    return {
        "since": row["pending_created_at" if slot == "pending" else "active_since"],
        "certificates": [
            {
                "subject": cert.subject.rfc4514_string(),
                "serial_number": format(cert.serial_number, "X"),
                "not_before": cert.not_valid_before_utc,
                "not_after": cert.not_valid_after_utc,
                "sha256_fingerprint": fingerprint(cert),
            }
            for cert in certs
        ],
    }


async def show_token(db: Database, name: str) -> TokenDocument:
    """Everything about one token except its secrets: the listing fields, the organisation,
    and the certificates of its active and pending key pairs."""
    async with db.read() as session:
        row = await _get(session, name)
    document = token_document(row)
    for column in token_repo.IDENTITY_COLUMNS:
        document.setdefault(column, row[column])
    document["keypairs"] = {
        "active": _keypair_document(row, "active"),
        "pending": _keypair_document(row, "pending"),
    }
    return document


async def delete_token(db: Database, name: str) -> TokenDocument:
    """Delete token ``name`` and everything it owns (devices, profiles, history go with it);
    returns what it was."""
    async with db.write() as session:
        row = await _get(session, name)
        await token_repo.delete_token(session, row["id"])
    return token_document(row)


async def get_token_document(db: Database, name: str) -> TokenDocument:
    async with db.read() as session:
        return token_document(await _get(session, name))


__all__ = [
    "DEFAULT_DEP_URL",
    "TOKEN_TYPES",
    "AccountIdentity",
    "DifferentServer",
    "DuplicateServer",
    "KeyPairDamaged",
    "KeyPairMissing",
    "KeypairCertificate",
    "OptionInvalid",
    "TokenAlreadyAdded",
    "TokenChanged",
    "TokenDocument",
    "TokenFileExpired",
    "TokenFileForeign",
    "TokenFileInvalid",
    "TokenNameInvalid",
    "TokenNotAdded",
    "TokenNotFound",
    "TokenStored",
    "Verify",
    "add_token",
    "check_dep_url",
    "check_file_size",
    "check_name",
    "check_token_type",
    "delete_token",
    "get_token_document",
    "keypair_certificate",
    "list_tokens",
    "open_credentials",
    "renew_token",
    "seed_token",
    "show_token",
    "token_document",
]
