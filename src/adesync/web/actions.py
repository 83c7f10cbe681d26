"""The changes people make through the API and the console: each calls the one service of
:mod:`adesync.services` that the CLI calls too, and writes the audit log.

Nothing here decides what an action does or what it clears; API routes and console forms only
word the results and errors for their users.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from adesync.errors import AdesyncError
from adesync.outbound import AllowedHosts
from adesync.services import lifecycle
from adesync.services import tokens as token_service
from adesync.services.apple_account import make_verifier
from adesync.web import audit
from adesync.web.auth import Principal
from adesync.web.services import profile_service, sync_service
from adesync.web.state import WebState

__all__ = [
    "Actor",
    "SyncThrottled",
    "assign_profile",
    "check_now",
    "create_token",
    "define_profile",
    "delete_token",
    "new_certificate",
    "remove_profile",
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
    """A manual sync came within the manual-sync allowance or Apple's ``Retry-After``."""

    http_status = 429

    def __init__(self, message: str, code: str, next_allowed_at: datetime) -> None:
        super().__init__(message, code=code, data={"next_allowed_at": next_allowed_at})
        self.next_allowed_at = next_allowed_at


def _allowed_hosts(state: WebState) -> AllowedHosts:
    return AllowedHosts.parse(state.settings.allowed_dep_hosts)


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
    token_service.check_new_name(name)
    token_service.check_token_type(token_type)
    url = token_service.check_dep_url(dep_url, policy=_allowed_hosts(state))
    if await token_service.token_exists(state.db, name):
        raise token_service.TokenAlreadyAdded(name, holds_token=False)
    certificate = await token_service.keypair_certificate(
        state.db, state.box, name, dep_url=url, token_type=token_type, dep_url_checked=True
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
) -> token_service.TokenStored:
    """Add the first token of ``name`` or renew it (the service proves it with Apple, clears
    what the fix clears and re-evaluates health before it returns)."""
    current = await token_service.get_token_document(state.db, name)
    checked = await token_service.dep_url_checked(state.db, name)
    verify = make_verifier(state.settings, policy=_allowed_hosts(state) if checked else None)
    if current["status"] == "waiting_for_p7m":
        stored = await token_service.add_token(
            state.db,
            state.box,
            name,
            data,
            dep_url=current["dep_url"],
            token_type=current["token_type"],
            force=force,
            verify=verify,
        )
        action = "token.add"
    else:
        stored = await token_service.renew_token(
            state.db, state.box, name, data, force=force, verify=verify
        )
        action = "token.renew"
    await actor.record(
        state, action, name, {"force": force, "warnings": list(stored.warnings)} if force else None
    )
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
    """A manual sync; raises SyncThrottled (with the time it is allowed again) when the
    service skipped it for the allowance or Apple's ``Retry-After``."""
    report = await lifecycle.sync_token_now(sync_service(state), name)
    if report.outcome == "skipped" and report.next_allowed_at is not None:
        raise SyncThrottled(
            report.message or "This token cannot be synced again yet.",
            report.error_code or "manual_sync_throttled",
            report.next_allowed_at,
        )
    await actor.record(
        state, "token.sync", name, {"outcome": report.outcome, "error_code": report.error_code}
    )
    result: dict[str, Any] = report.as_json()
    return result


async def check_now(state: WebState, actor: Actor, name: str) -> lifecycle.CheckResult:
    result = await lifecycle.check_token(sync_service(state), name)
    await actor.record(
        state, "token.check", name, {"ok": result.ok, "error_code": result.error_code}
    )
    return result


async def set_default_profile(state: WebState, actor: Actor, name: str, profile_uuid: str) -> int:
    assigned = await profile_service(state).set_default(name, profile_uuid)
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
    accepted = await profile_service(state).assign(name, profile_uuid, serials)
    await actor.record(
        state,
        "profile.assign",
        name,
        {"profile_uuid": profile_uuid, "serials": len(serials), "accepted": accepted},
    )
    return accepted


async def remove_profile(
    state: WebState, actor: Actor, name: str, serials: list[str]
) -> dict[str, str]:
    result = await profile_service(state).remove(name, serials)
    await actor.record(
        state, "profile.remove", name, {"serials": len(serials), "removed": result.removed}
    )
    return result.devices
