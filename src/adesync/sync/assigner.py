"""The default-profile assigner: gives devices that need one the token's default profile."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Literal, Protocol

from adesync.apple import AppleError, AssignProfileResponse

CHUNK = 1000
# Apple's answers about a profile (not the token): recorded, and the sync goes on.
PROFILE_ERRORS = ("profile_not_found", "profile_invalid", "malformed_request")


class ProfileAssigning(Protocol):
    """The one Apple call the assigner needs."""

    async def assign_profile(
        self, profile_uuid: str, serials: Sequence[str], method: Literal["PUT", "POST"] = "PUT"
    ) -> AssignProfileResponse: ...


class AssignmentStore(Protocol):
    """Where results go; ``waiting`` names serials whose retry is scheduled for later."""

    async def record_results(
        self,
        token_id: int,
        profile_uuid: str,
        results: Mapping[str, str],
        retry_after: int | None,
        now: datetime,
    ) -> None: ...

    async def waiting(self, token_id: int, serials: Sequence[str], now: datetime) -> set[str]: ...

    async def due_retries(self, token_id: int, now: datetime) -> dict[str, list[str]]: ...


class ProfileErrorSink(Protocol):
    async def record_profile_error(
        self,
        token_id: int,
        code: str,
        status: int | None,
        body: str,
        now: datetime,
        *,
        profile_uuid: str | None = None,
    ) -> None: ...


class Assigner:
    """Assigns one profile to serials in chunks of 1000 and stores each serial's answer."""

    def __init__(
        self,
        client: ProfileAssigning,
        store: AssignmentStore,
        errors: ProfileErrorSink,
        token_id: int,
        now: Callable[[], datetime],
    ) -> None:
        self.client = client
        self.store = store
        self.errors = errors
        self.token_id = token_id
        self.now = now
        self.stopped = False  # a profile error stops assigning for the rest of the run
        self.refusal: AppleError | None = None  # the profile error that stopped it

    async def assign(self, profile_uuid: str, serials: Sequence[str]) -> int:
        """Assign ``profile_uuid``; returns how many serials Apple answered SUCCESS."""
        if self.stopped or not serials:
            return 0
        waiting = await self.store.waiting(self.token_id, serials, self.now())
        todo = [s for s in serials if s not in waiting]
        succeeded = 0
        for start in range(0, len(todo), CHUNK):
            chunk = todo[start : start + CHUNK]
            try:
                answer = await self.client.assign_profile(profile_uuid, chunk)
            except AppleError as error:
                if error.code not in PROFILE_ERRORS:
                    raise
                await self.errors.record_profile_error(
                    self.token_id,
                    error.code,
                    error.status,
                    error.body,
                    self.now(),
                    profile_uuid=profile_uuid,
                )
                self.stopped = True
                self.refusal = error
                return succeeded
            # A serial missing from Apple's answer counts as FAILED.
            results = {serial: answer.devices.get(serial, "FAILED") for serial in chunk}
            await self.store.record_results(
                self.token_id, profile_uuid, results, answer.retry_after_seconds, self.now()
            )
            succeeded += sum(1 for status in results.values() if status == "SUCCESS")
        return succeeded

    async def retry_due(self) -> int:
        """Try again the FAILED and THROTTLED serials whose wait is over."""
        succeeded = 0
        for profile_uuid, serials in (
            await self.store.due_retries(self.token_id, self.now())
        ).items():
            succeeded += await self.assign(profile_uuid, serials)
        return succeeded
