"""Server tokens, as every door reaches them: list, show, delete, and the actions of the
modules beside this one (key pairs, add and renew), re-exported here.

Each function takes a ``Database`` (and the ``SecretBox`` where secrets are involved), does one
job in as few transactions as it needs, and raises the typed errors of
:mod:`adesync.services.token_errors`.
"""

from __future__ import annotations

from typing import Any

from cryptography import x509
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from adesync.services.keypairs import (
    CERTIFICATE_REISSUE_WITHIN,
    KeypairCertificate,
    Slot,
    keypair_certificate,
)
from adesync.services.token_errors import (
    DifferentServer,
    DuplicateServer,
    KeyPairDamaged,
    KeyPairMissing,
    OptionInvalid,
    TokenAlreadyAdded,
    TokenChanged,
    TokenFileExpired,
    TokenFileForeign,
    TokenFileInvalid,
    TokenNameInvalid,
    TokenNotAdded,
    TokenNotFound,
)
from adesync.services.token_model import (
    DEFAULT_DEP_URL,
    DEFAULT_TOKEN_TYPE,
    TOKEN_TYPES,
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
from adesync.services.uploads import (
    TokenStored,
    add_token,
    open_credentials,
    renew_token,
    seed_token,
)
from adesync.store import token_repo
from adesync.store.database import Database
from adesync.tokens import fingerprint


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
        raise TokenNotFound(name)
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


async def token_exists(db: Database, name: str) -> bool:
    async with db.read() as session:
        return await token_repo.get_token(session, name) is not None


async def get_token_document(db: Database, name: str) -> TokenDocument:
    async with db.read() as session:
        return token_document(await _get(session, name))


async def dep_url_checked(db: Database, name: str) -> bool:
    """Whether token ``name``'s Apple URL came through the API or the console (every
    connection to it is then checked against ``ADESYNC_ALLOWED_DEP_HOSTS``)."""
    async with db.read() as session:
        return bool((await _get(session, name))["dep_url_checked"])


__all__ = [
    "CERTIFICATE_REISSUE_WITHIN",
    "DEFAULT_DEP_URL",
    "DEFAULT_TOKEN_TYPE",
    "TOKEN_TYPES",
    "AccountIdentity",
    "DifferentServer",
    "DuplicateServer",
    "KeyPairDamaged",
    "KeyPairMissing",
    "KeypairCertificate",
    "OptionInvalid",
    "Slot",
    "TokenAlreadyAdded",
    "TokenChanged",
    "TokenDocument",
    "TokenFileExpired",
    "TokenFileForeign",
    "TokenFileInvalid",
    "TokenNameInvalid",
    "TokenNotAdded",
    "TokenNotFound",
    "TokenRow",
    "TokenStored",
    "Verify",
    "add_token",
    "check_dep_url",
    "check_file_size",
    "check_name",
    "check_new_name",
    "check_token_type",
    "delete_token",
    "dep_url_checked",
    "get_token_document",
    "keypair_certificate",
    "list_tokens",
    "open_credentials",
    "renew_token",
    "seed_token",
    "show_token",
    "token_document",
    "token_exists",
]
