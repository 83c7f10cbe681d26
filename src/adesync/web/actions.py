"""The changes people make through the API and the console, each written to the audit log.

API routes and console forms call these same functions, so both behave alike.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from adesync.errors import AdesyncError, NotFoundError
from adesync.services import tokens as token_service
from adesync.store.types import utcnow
from adesync.web import audit
from adesync.web.auth import Principal
from adesync.web.services import profile_service, sync_service, token_ids
from adesync.web.state import WebState

log = logging.getLogger(__name__)

__all__ = [
    "SyncThrottled",
    "check_now",
    "create_token",
    "delete_token",
    "new_certificate",
    "set_default_profile",
    "sync_now",
    "upload_p7m",
]


@dataclass(frozen=True)
class Actor:
    principal: Principal
    remote_addr: str | None

    async def record(
        self, state: WebState, action: str, target: str, detail: dict[str, Any] | None = None
    ) -> None:
        # Every recorded action changed a token (or what listings show about it).
        state.tokens_changed()
        await audit.record(state.db, self.principal.actor, action, target, detail, self.remote_addr)


class SyncThrottled(AdesyncError):
    """A manual sync came within 15 minutes of the last one."""

    code = "manual_sync_throttled"
    http_status = 429

    def __init__(self, message: str, next_allowed_at: datetime) -> None:
        super().__init__(message)
        self.next_allowed_at = next_allowed_at


def verifier(state: WebState) -> token_service.Verify:
    """Apple's ``/account`` check for uploads (refuses what Apple refuses; names the org)."""
    from adesync.web.verify import account_verifier

    return account_verifier(state.settings)


async def _id(state: WebState, name: str) -> int:
    token_id = await token_ids(state.db, name)
    if token_id is None:
        raise token_service.TokenNotFound(f"There is no token called {name}.")
    return token_id


async def create_token(
    state: WebState,
    actor: Actor,
    name: str,
    *,
    token_type: str = token_service.DEFAULT_TOKEN_TYPE,
    dep_url: str | None = None,
) -> tuple[token_service.TokenDocument, token_service.KeypairCertificate]:
    """A token waiting for its first ``.p7m`` (of ``token_type``, at Apple's ``dep_url`` or the
    default), and the certificate to upload to ABM/ASM."""
    token_service.check_name(name)
    # Named as the API's body and the console's form name them, not as the CLI's options.
    token_service.check_token_type(token_type, field="type")
    url = token_service.check_dep_url(dep_url, field="dep_url")
    async with state.db.read() as session:
        from sqlalchemy import select

        from adesync.store.tables import tokens

        exists = (await session.execute(select(tokens.c.id).where(tokens.c.name == name))).first()
    if exists is not None:
        raise token_service.TokenAlreadyAdded(f"A token called {name} already exists.")
    certificate = await token_service.keypair_certificate(
        state.db, state.box, name, dep_url=url, token_type=token_type
    )
    await actor.record(state, "token.create", name)
    return await token_service.get_token_document(state.db, name), certificate


async def upload_p7m(
    state: WebState,
    actor: Actor,
    name: str,
    data: bytes,
    *,
    force: bool = False,
    dep_url: str | None = None,
    token_type: str | None = None,
) -> token_service.TokenStored:
    """Add the first token of ``name`` or renew it, then check it with Apple at once."""
    current = await token_service.get_token_document(state.db, name)
    if current["status"] == "waiting_for_p7m":
        stored = await token_service.add_token(
            state.db,
            state.box,
            name,
            data,
            dep_url=dep_url or current["dep_url"],
            token_type=token_type or current["token_type"],
            force=force,
            verify=verifier(state),
        )
        action = "token.add"
    else:
        stored = await token_service.renew_token(
            state.db, state.box, name, data, force=force, verify=verifier(state)
        )
        action = "token.renew"
    await actor.record(
        state, action, name, {"force": force, "warnings": list(stored.warnings)} if force else None
    )
    # The check clears flags set by the old token and lets health re-evaluate at once.
    try:
        await sync_service(state).check(await _id(state, name))
    except AdesyncError as exc:
        log.info("check after upload of %s: %s", name, exc.message)
    state.tokens_changed()
    return stored


async def delete_token(state: WebState, actor: Actor, name: str) -> None:
    await token_service.delete_token(state.db, name)
    await actor.record(state, "token.delete", name)


async def new_certificate(
    state: WebState, actor: Actor, name: str
) -> token_service.KeypairCertificate:
    await token_service.get_token_document(state.db, name)
    certificate = await token_service.keypair_certificate(state.db, state.box, name, new=True)
    await actor.record(state, "token.new_keypair", name)
    return certificate


async def sync_now(state: WebState, actor: Actor, name: str) -> dict[str, Any]:
    """A manual sync (15-minute throttle); raises SyncThrottled with the next allowed time."""
    token_id = await _id(state, name)
    report = await sync_service(state).sync_now(token_id, trigger="manual")
    if report.error_code == "manual_sync_throttled" and report.next_allowed_at is not None:
        raise SyncThrottled(
            report.message or "This token was synced by hand less than 15 minutes ago.",
            report.next_allowed_at,
        )
    await actor.record(
        state, "token.sync", name, {"outcome": report.outcome, "error_code": report.error_code}
    )
    result: dict[str, Any] = report.as_json()
    return result


async def check_now(state: WebState, actor: Actor, name: str) -> dict[str, Any]:
    token_id = await _id(state, name)
    ok, code = await sync_service(state).check(token_id)
    await actor.record(state, "token.check", name, {"ok": ok, "error_code": code})
    return {"token": name, "ok": ok, "error_code": code, "checked_at": utcnow()}


async def set_default_profile(state: WebState, actor: Actor, name: str, profile_uuid: str) -> int:
    known = {p.profile_uuid for p in await profile_service(state).list(name)}
    if profile_uuid not in known:
        raise NotFoundError(f"Token {name} has no profile {profile_uuid}.")
    assigned: int = await profile_service(state).set_default(name, profile_uuid)
    await actor.record(
        state, "profile.set_default", name, {"profile_uuid": profile_uuid, "assigned": assigned}
    )
    return assigned


async def define_profile(
    state: WebState, actor: Actor, name: str, definition: dict[str, Any], *, default: bool
) -> tuple[dict[str, Any], int]:
    record, assigned = await profile_service(state).define(name, definition, default=default)
    await actor.record(
        state,
        "profile.define",
        name,
        {"profile_uuid": record.profile_uuid, "default": default, "assigned": assigned},
    )
    document: dict[str, Any] = record.as_json()
    return document, assigned


async def assign_profile(
    state: WebState, actor: Actor, name: str, profile_uuid: str, serials: list[str]
) -> int:
    known = {p.profile_uuid for p in await profile_service(state).list(name)}
    if profile_uuid not in known:
        raise NotFoundError(f"Token {name} has no profile {profile_uuid}.")
    accepted: int = await profile_service(state).assign(name, profile_uuid, serials)
    await actor.record(
        state,
        "profile.assign",
        name,
        {"profile_uuid": profile_uuid, "serials": len(serials), "accepted": accepted},
    )
    return accepted
