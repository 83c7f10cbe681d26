"""Enrollment profiles: local validation with Apple's field limits, define, default, assign."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import insert, select, update

from adesync.apple import AppleError
from adesync.errors import AdesyncError, NotFoundError
from adesync.store.tables import tokens
from adesync.store.tables_sync import profiles
from adesync.store.types import utcnow
from adesync.sync.assigner import Assigner
from adesync.sync.clients import NoCredentials
from adesync.sync.service import SyncService

# Apple's limits (define-profile documentation): field → (min, max, Apple's error code).
TEXT_LIMITS: dict[str, tuple[int, int, str]] = {
    "profile_name": (1, 125, "CONFIG_NAME_INVALID"),
    "url": (1, 2000, "CONFIG_URL_INVALID"),
    "configuration_web_url": (0, 2000, "CONFIG_URL_INVALID"),
    "support_phone_number": (0, 50, "SUPPORT_PHONE_INVALID"),
    "support_email_address": (0, 250, "SUPPORT_EMAIL_INVALID"),
    "org_magic": (0, 256, "MAGIC_INVALID"),
    "department": (0, 125, "DEPARTMENT_INVALID"),
}
REQUIRED = {"profile_name": "CONFIG_NAME_REQUIRED", "url": "CONFIG_URL_REQUIRED"}
BOOL_FIELDS = (
    "allow_pairing",
    "is_supervised",
    "is_multi_user",
    "is_mandatory",
    "await_device_configured",
    "is_mdm_removable",
    "auto_advance_setup",
    "do_not_use_profile_from_backup",
    "is_return_to_service",
)
LIST_FIELDS = ("anchor_certs", "supervising_host_certs", "skip_setup_items", "devices")


class ProfileInvalid(AdesyncError):
    """A profile field breaks Apple's rules; ``field`` and ``apple_code`` say which."""

    code = "profile_invalid"

    def __init__(self, message: str, *, field: str, apple_code: str) -> None:
        super().__init__(message)
        self.field = field
        self.apple_code = apple_code


class AppleRefused(AdesyncError):
    """Apple answered a profile or assignment call with an error."""

    http_status = 502

    def __init__(self, error: AppleError) -> None:
        super().__init__(str(error), code=error.code)
        self.apple_code = error.field


def validate_profile(definition: Any) -> dict[str, Any]:
    """Check a profile against Apple's field limits before it is sent; returns it unchanged."""
    if not isinstance(definition, dict):
        raise ProfileInvalid(
            "A profile must be a JSON object of Apple's profile fields.",
            field="(profile)",
            apple_code="MALFORMED_REQUEST_BODY",
        )
    for name, apple_code in REQUIRED.items():
        value = definition.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise ProfileInvalid(
                f"The profile has no {name}; Apple requires one ({apple_code}).",
                field=name,
                apple_code=apple_code,
            )
    for name, (low, high, apple_code) in TEXT_LIMITS.items():
        value = definition.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or not low <= len(value) <= high:
            size = f"{len(value)} characters long" if isinstance(value, str) else "not text"
            raise ProfileInvalid(
                f"The profile's {name} is {size}; Apple allows {low} to {high} "
                f"characters ({apple_code}).",
                field=name,
                apple_code=apple_code,
            )
    for name in ("url", "configuration_web_url"):
        value = definition.get(name)
        if value and not _is_web_url(value):
            raise ProfileInvalid(
                f"The profile's {name} {value!r} is not an http(s) URL (CONFIG_URL_INVALID).",
                field=name,
                apple_code="CONFIG_URL_INVALID",
            )
    for name in BOOL_FIELDS:
        if name in definition and not isinstance(definition[name], bool):
            raise ProfileInvalid(
                f"The profile's {name} must be true or false (FLAGS_INVALID).",
                field=name,
                apple_code="FLAGS_INVALID",
            )
    for name in LIST_FIELDS:
        value = definition.get(name)
        if value is not None and (
            not isinstance(value, list) or not all(isinstance(v, str) for v in value)
        ):
            raise ProfileInvalid(
                f"The profile's {name} must be a list of strings.",
                field=name,
                apple_code="MALFORMED_REQUEST_BODY",
            )
    if definition.get("is_mdm_removable") is False and definition.get("is_supervised") is False:
        raise ProfileInvalid(
            "The profile sets is_mdm_removable to false on an unsupervised device; Apple allows "
            "that only with is_supervised true (FLAGS_INVALID).",
            field="is_mdm_removable",
            apple_code="FLAGS_INVALID",
        )
    language, region = definition.get("language"), definition.get("region")
    if language is not None and (not isinstance(language, str) or not 2 <= len(language) <= 3):
        raise ProfileInvalid(
            "The profile's language must be an ISO 639 code of 2 or 3 letters (LOCALE_INVALID).",
            field="language",
            apple_code="LOCALE_INVALID",
        )
    if region is not None and (not isinstance(region, str) or len(region) != 2):
        raise ProfileInvalid(
            "The profile's region must be an ISO 3166 code of 2 letters (LOCALE_INVALID).",
            field="region",
            apple_code="LOCALE_INVALID",
        )
    return definition


def _is_web_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("https", "http") and bool(parts.netloc)


def parse_profile_file(text: str) -> dict[str, Any]:
    try:
        definition = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProfileInvalid(
            f"The profile file is not valid JSON (line {exc.lineno}, column {exc.colno}).",
            field="(profile)",
            apple_code="MALFORMED_REQUEST_BODY",
        ) from None
    return validate_profile(definition)


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


class ProfileService:
    """Define, list, assign and set default profiles of tokens (through Apple)."""

    def __init__(self, sync: SyncService, now: Callable[[], datetime] = utcnow) -> None:
        self.sync = sync
        self.db = sync.db
        self.now = now

    async def _token(self, name: str) -> tuple[int, str | None]:
        async with self.db.read() as session:
            row = (
                await session.execute(
                    select(tokens.c.id, tokens.c.default_profile_uuid).where(tokens.c.name == name)
                )
            ).first()
        if row is None:
            raise NotFoundError(
                f"There is no token named {name}; `adesync tokens list --all` shows them."
            )
        return int(row[0]), row[1]

    async def define(
        self, token_name: str, definition: dict[str, Any], *, default: bool = False
    ) -> tuple[ProfileRecord, int]:
        """Validate, define at Apple, store; with ``default`` also make it the token's default
        (returns how many devices that assigned)."""
        validate_profile(definition)
        token_id, _ = await self._token(token_name)
        state = await self.sync.repo.load_state(token_id)
        if state.credentials is None:
            raise NoCredentials(token_name)
        body = {k: v for k, v in definition.items() if k != "devices"}
        async with self.sync.make_client(state.dep_url, state.credentials) as client:
            try:
                answer = await client.define_profile(body)
            except AppleError as error:
                await self._record(token_id, error)
                raise AppleRefused(error) from None
        now = self.now()
        async with self.db.write() as session:
            await session.execute(
                insert(profiles).values(
                    token_id=token_id,
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
            await self._token(token_name)
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

    async def set_default(self, token_name: str, profile_uuid: str) -> int:
        """Make ``profile_uuid`` the default and re-assign, from the stored device list, the
        devices that had the old default or no profile; returns how many Apple accepted."""
        token_id, old_default = await self._token(token_name)
        async with self.db.write() as session:
            await session.execute(
                update(tokens)
                .where(tokens.c.id == token_id)
                .values(default_profile_uuid=profile_uuid, updated_at=self.now())
            )
        previous = old_default if old_default != profile_uuid else None
        serials = await self.sync.assignments.serials_for_new_default(token_id, previous)
        return await self.assign(token_name, profile_uuid, serials)

    async def assign(self, token_name: str, profile_uuid: str, serials: Sequence[str]) -> int:
        """Assign ``profile_uuid`` to ``serials`` now; returns how many Apple accepted."""
        token_id, _ = await self._token(token_name)
        if not serials:
            return 0
        state = await self.sync.repo.load_state(token_id)
        if state.credentials is None:
            raise NoCredentials(token_name)
        async with self.sync.make_client(state.dep_url, state.credentials) as client:
            assigner = Assigner(client, self.sync.assignments, self.sync.repo, token_id, self.now)
            try:
                accepted = await assigner.assign(profile_uuid, list(serials))
            except AppleError as error:
                await self._record(token_id, error)
                raise AppleRefused(error) from None
        if assigner.stopped:
            async with self.db.read() as session:
                body = (
                    await session.execute(
                        select(tokens.c.last_error_body).where(tokens.c.id == token_id)
                    )
                ).scalar()
            raise AdesyncError(
                f"Apple refused profile {profile_uuid}: {body or 'no reason given'}.",
                code="profile_not_found",
            )
        return accepted

    async def _record(self, token_id: int, error: AppleError) -> None:
        await self.sync.repo.record_profile_error(
            token_id, error.code, error.status, error.field or error.body, self.now()
        )
