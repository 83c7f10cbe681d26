"""Key pairs of server tokens: the certificate an admin uploads to ABM/ASM, and the private key
that opens the token file ABM/ASM makes for it.

A token row is created by :func:`keypair_certificate` with a *pending* key pair; once a token
made for it is accepted the pending key becomes the *active* one. Until then an earlier active
key keeps decrypting (renewal). A certificate within 60 days of its end is re-issued for the
same key when it is handed out; earlier certificates are remembered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy.engine import RowMapping

from adesync.services.token_errors import KeyPairDamaged, TokenChanged
from adesync.services.token_model import (
    DEFAULT_DEP_URL,
    DEFAULT_TOKEN_TYPE,
    TokenRow,
    check_name,
    check_new_name,
)
from adesync.store import token_repo
from adesync.store.database import Database
from adesync.store.keycheck import hold_key
from adesync.store.secrets import SecretBox
from adesync.store.types import utcnow
from adesync.tokens import KeyPair, KeyPairError, generate_keypair

__all__ = ["CERTIFICATE_REISSUE_WITHIN", "KeypairCertificate", "Slot", "keypair_certificate"]

# A certificate this close to its end is re-issued for the same key when it is handed out.
CERTIFICATE_REISSUE_WITHIN = timedelta(days=60)

Slot = Literal["pending", "active"]


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


def load_keypair(box: SecretBox, row: TokenRow, slot: Slot) -> KeyPair | None:
    sealed = row[f"{slot}_private_key"]
    if sealed is None:
        return None
    try:
        return KeyPair.from_pem(box.open(bytes(sealed)), row[f"{slot}_certificates"] or "")
    except KeyPairError:
        raise KeyPairDamaged(row["name"], slot) from None


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
    dep_url_checked: bool,
) -> bool:
    """Store ``keypair`` as the pending key of ``name`` (creating the row, with ``dep_url`` and
    ``token_type``); False if another process gave the token a key in the meantime and
    ``replace`` is off."""
    async with db.write() as session:
        await hold_key(session, box)
        row = await token_repo.get_token(session, name, for_update=True)
        if row is None:
            token_id = await token_repo.create_token(
                session,
                name=name,
                dep_url=dep_url,
                token_type=token_type,
                now=now,
                dep_url_checked=dep_url_checked,
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
    dep_url_checked: bool = False,
) -> KeypairCertificate:
    """The PEM certificate to upload to ABM/ASM for token ``name``.

    A new name gets a pending key pair, in a token created with ``dep_url`` and ``token_type``
    in the same transaction (an existing token keeps its own); ``dep_url_checked`` has every
    connection of the new token checked against ``ADESYNC_ALLOWED_DEP_HOSTS``. An existing
    token hands out its pending certificate if it has one, else its active one (renewal reuses
    the key pair); ``new`` makes a fresh pending key pair instead. A certificate within 60 days
    of its end is re-issued for the same key and remembered beside the earlier ones.
    """
    check_name(name)
    now = now or utcnow()
    async with db.read() as session:
        row = await token_repo.get_token(session, name)
    has_key = row is not None and (
        row["pending_private_key"] is not None or row["active_private_key"] is not None
    )
    if row is None:
        check_new_name(name)
    if new or not has_key:
        keypair = generate_keypair(name, now=now)
        stored = await _store_new_pending(
            db,
            box,
            name,
            keypair,
            replace=new,
            now=now,
            dep_url=dep_url,
            token_type=token_type,
            dep_url_checked=dep_url_checked,
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
    keypair = load_keypair(box, row, slot)
    assert keypair is not None
    reissued = keypair.certificate.not_valid_after_utc - now < CERTIFICATE_REISSUE_WITHIN
    if reissued:
        keypair = keypair.with_new_certificate(row["name"], now=now)
        async with db.write() as session:
            current = await token_repo.get_token(session, row["name"], for_update=True)
            columns = (f"{slot}_private_key", f"{slot}_certificates")
            if current is None or any(current[c] != row[c] for c in columns):
                raise TokenChanged(row["name"])
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
