"""Enrollment profiles of a token: define, list, set the default, assign and remove, once for
the CLI, the API and the console.

A change Apple refuses changes nothing here: Apple's 404 for the profile or a 4xx on the whole
request raises :class:`ProfileRefused` before anything is stored, and no finding is raised
about the refused value (profile findings are about the stored default in use). A profile not
defined through adesync is looked up at Apple (``GET /profile``) before it becomes a default,
even when no device needs it now. Per-serial answers (``NOT_ACCESSIBLE``, ``FAILED``) are
assignment results, not refusals: they are stored and the findings speak of them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update

from adesync.apple import AppleClient, AppleError
from adesync.errors import AdesyncError
from adesync.health.jobs import evaluate_after_sync
from adesync.services.apple_account import check_failed
from adesync.services.lifecycle import token_id
from adesync.store.tables import tokens
from adesync.store.tables_sync import profiles
from adesync.store.types import utcnow
from adesync.sync.assigner import Assigner
from adesync.sync.clients import NoCredentials
from adesync.sync.profiles import validate_profile
from adesync.sync.service import SyncService

__all__ = ["ProfileRecord", "ProfileRefused", "ProfileService", "RemoveResult"]


class ProfileRefused(AdesyncError):
    """Apple refused a profile change; nothing was stored. ``code`` is Apple's error as a
    finding code (``profile_not_found``, ``profile_invalid``, ...)."""

    def __init__(self, error: AppleError, profile_uuid: str | None) -> None:
        what = f"profile {profile_uuid}" if profile_uuid else "this profile"
        if error.code == "profile_not_found":
            text = f"Apple does not know {what} for this token's MDM server; nothing was changed."
        else:
            reason = error.field or " ".join(error.body.split())[:120] or f"HTTP {error.status}"
            text = f"Apple refused {what} ({reason}); nothing was changed."
        super().__init__(
            text,
            code=error.code,
            data={
                "profile_uuid": profile_uuid,
                "apple_code": error.field,
                "status": error.status,
            },
        )
        self.http_status = 404 if error.code == "profile_not_found" else 400


class AppleUnreachable(AdesyncError):
    """Apple could not be asked (or refused the token itself): the change was not made."""

    http_status = 503


def _refusal(error: AppleError, dep_url: str, profile_uuid: str | None) -> AdesyncError:
    """A refusal of the change (4xx) or of the token / Apple being unavailable (the rest)."""
    token_level = ("token_rejected", "terms_not_accepted", "access_denied", "apple_throttled")
    if error.status is not None and 400 <= error.status < 500 and error.code not in token_level:
        return ProfileRefused(error, profile_uuid)
    checked = check_failed(error, dep_url)
    unreachable = AppleUnreachable(checked.message, code=error.code, data=checked.data)
    unreachable.http_status = checked.http_status
    return unreachable


class _NotRecorded:
    """A refused manual change leaves no profile error behind (it is raised instead)."""

    async def record_profile_error(
        self,
        token_id: int,
        code: str,
        status: int | None,
        body: str,
        now: datetime,
        *,
        profile_uuid: str | None = None,
    ) -> None:
        return None


@dataclass
class ProfileRecord:
    token: str
    profile_uuid: str
    profile_name: str
    url: str
    defined_at: datetime
    is_default: bool
    definition: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "profile_uuid": self.profile_uuid,
            "profile_name": self.profile_name,
            "url": self.url,
            "defined_at": self.defined_at,
            "default": self.is_default,
            "definition": self.definition,
        }


@dataclass(frozen=True)
class RemoveResult:
    """Apple's answer per serial to removing the profile (``SUCCESS``, ``NOT_ACCESSIBLE``...)."""

    devices: dict[str, str]

    @property
    def removed(self) -> int:
        return sum(1 for status in self.devices.values() if status == "SUCCESS")


class ProfileService:
    """Define, list, assign, remove and set default profiles of tokens (through Apple)."""

    def __init__(self, sync: SyncService, now: Callable[[], datetime] = utcnow) -> None:
        self.sync = sync
        self.db = sync.db
        self.now = now

    async def _client(self, ident: int, name: str) -> tuple[AppleClient, str]:
        state = await self.sync.repo.load_state(ident)
        if state.credentials is None:
            raise NoCredentials(name)
        client = self.sync.make_client(
            state.dep_url, state.credentials, checked=state.dep_url_checked
        )
        return client, state.dep_url

    async def define(
        self, token_name: str, definition: dict[str, Any], *, default: bool = False
    ) -> tuple[ProfileRecord, int]:
        """Validate, define at Apple, store; with ``default`` also make it the token's default
        (returns how many devices that assigned)."""
        validate_profile(definition)
        ident = await token_id(self.db, token_name)
        body = {k: v for k, v in definition.items() if k != "devices"}
        client, dep_url = await self._client(ident, token_name)
        async with client:
            try:
                answer = await client.define_profile(body)
            except AppleError as error:
                raise _refusal(error, dep_url, None) from None
        now = self.now()
        async with self.db.write() as session:
            await session.execute(
                insert(profiles).values(
                    token_id=ident,
                    profile_uuid=answer.profile_uuid,
                    profile_name=body["profile_name"],
                    url=body["url"],
                    definition=json.dumps(body, ensure_ascii=False),
                    defined_at=now,
                )
            )
        assigned = 0
        if default:
            assigned = await self.set_default(token_name, answer.profile_uuid)
        else:
            await evaluate_after_sync(self.db, self.sync.box, [ident])
        record = ProfileRecord(
            token=token_name,
            profile_uuid=answer.profile_uuid,
            profile_name=body["profile_name"],
            url=body["url"],
            defined_at=now,
            is_default=default,
            definition=body,
        )
        return record, assigned

    async def list(self, token_name: str | None = None) -> list[ProfileRecord]:
        query = (
            select(
                tokens.c.name,
                tokens.c.default_profile_uuid,
                profiles.c.profile_uuid,
                profiles.c.profile_name,
                profiles.c.url,
                profiles.c.defined_at,
                profiles.c.definition,
            )
            .join(tokens, tokens.c.id == profiles.c.token_id)
            .order_by(tokens.c.name, profiles.c.defined_at)
        )
        if token_name is not None:
            await token_id(self.db, token_name)
            query = query.where(tokens.c.name == token_name)
        async with self.db.read() as session:
            rows = (await session.execute(query)).all()
        return [
            ProfileRecord(
                token=row.name,
                profile_uuid=row.profile_uuid,
                profile_name=row.profile_name,
                url=row.url,
                defined_at=row.defined_at,
                is_default=row.profile_uuid == row.default_profile_uuid,
                definition=json.loads(row.definition),
            )
            for row in rows
        ]

    async def _defined_here(self, ident: int, profile_uuid: str) -> bool:
        async with self.db.read() as session:
            found = await session.execute(
                select(profiles.c.id).where(
                    profiles.c.token_id == ident, profiles.c.profile_uuid == profile_uuid
                )
            )
            return found.first() is not None

    async def set_default(self, token_name: str, profile_uuid: str) -> int:
        """Make ``profile_uuid`` the default once Apple accepts it, and re-assign the devices
        that had the old default or no profile; returns how many Apple accepted. Refused
        (nothing stored): Apple does not know the profile, or refuses the assignment."""
        ident = await token_id(self.db, token_name)
        async with self.db.read() as session:
            old_default, refused = (
                await session.execute(
                    select(tokens.c.default_profile_uuid, tokens.c.profile_error_uuid).where(
                        tokens.c.id == ident
                    )
                )
            ).one()
        previous = old_default if old_default != profile_uuid else None
        serials = await self.sync.assignments.serials_for_new_default(ident, previous)
        client, dep_url = await self._client(ident, token_name)
        async with client:
            if refused == profile_uuid or not await self._defined_here(ident, profile_uuid):
                try:
                    await client.get_profile(profile_uuid)
                except AppleError as error:
                    raise _refusal(error, dep_url, profile_uuid) from None
            accepted = await self._assign(client, dep_url, ident, profile_uuid, serials)
        async with self.db.write() as session:
            # Apple accepts this profile: a profile error of the old default no longer holds.
            await session.execute(
                update(tokens)
                .where(tokens.c.id == ident)
                .values(
                    default_profile_uuid=profile_uuid,
                    profile_error_code=None,
                    profile_error_body=None,
                    profile_error_at=None,
                    profile_error_uuid=None,
                    updated_at=self.now(),
                )
            )
        await evaluate_after_sync(self.db, self.sync.box, [ident])
        return accepted

    async def _assign(
        self,
        client: AppleClient,
        dep_url: str,
        ident: int,
        profile_uuid: str,
        serials: Sequence[str],
    ) -> int:
        """Assign through the assigner (each serial's answer stored); a refusal raises."""
        if not serials:
            return 0
        assigner = Assigner(client, self.sync.assignments, _NotRecorded(), ident, self.now)
        try:
            accepted = await assigner.assign(profile_uuid, list(serials))
        except AppleError as error:
            raise _refusal(error, dep_url, profile_uuid) from None
        if assigner.refusal is not None:
            raise _refusal(assigner.refusal, dep_url, profile_uuid)
        return accepted

    async def assign(self, token_name: str, profile_uuid: str, serials: Sequence[str]) -> int:
        """Assign ``profile_uuid`` to ``serials`` now; returns how many Apple accepted."""
        ident = await token_id(self.db, token_name)
        if not serials:
            return 0
        client, dep_url = await self._client(ident, token_name)
        async with client:
            accepted = await self._assign(client, dep_url, ident, profile_uuid, serials)
        await evaluate_after_sync(self.db, self.sync.box, [ident])
        return accepted

    async def remove(self, token_name: str, serials: Sequence[str]) -> RemoveResult:
        """Remove the profile from ``serials`` at Apple (``DELETE /profile/devices``); the next
        sync stores the devices' new profile status."""
        ident = await token_id(self.db, token_name)
        if not serials:
            return RemoveResult(devices={})
        client, dep_url = await self._client(ident, token_name)
        async with client:
            try:
                answer = await client.remove_profile(list(serials))
            except AppleError as error:
                raise _refusal(error, dep_url, None) from None
        return RemoveResult(devices=dict(answer.devices))
