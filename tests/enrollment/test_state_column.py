"""The enrollment state that sync writes with each page (``ENROLLMENT_STATE_COLUMN``), on both
backends: it must agree with the full derivation in SQL, follow Apple's profile status while no
MDM step is known, and leave a device with steps alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from adesync.enrollment.state import (
    ENROLLMENT_STATE_COLUMN,
    refresh_where,
    state_without_steps,
)
from adesync.store.database import Database
from adesync.store.secrets import SecretBox
from adesync.store.sync_repo import SyncRepo
from adesync.store.tables_sync import devices
from adesync.sync.model import DeviceRecord
from tests.sync.helpers import insert_token, record

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
STATUSES = ("empty", "assigned", "pushed", "removed", None)


async def commit(
    db: Database, box: SecretBox, token_id: int, records: list[DeviceRecord], now: datetime
) -> None:
    await SyncRepo(db, box, [ENROLLMENT_STATE_COLUMN]).commit_page(
        token_id, "w1", records, "cursor", fetch_started_at=None, completes_fetch=False, now=now
    )


async def states(db: Database) -> dict[str, str | None]:
    async with db.read() as session:
        rows = await session.execute(select(devices.c.serial_number, devices.c.enrollment_state))
        return {serial: state for serial, state in rows}


async def test_the_written_state_is_what_the_full_derivation_gives(
    db: Database, box: SecretBox
) -> None:
    token_id = await insert_token(db, box)
    records = [
        record(f"S{n}", "added", NOW, profile_status=status)  # type: ignore[arg-type]  # None too
        for n, status in enumerate(STATUSES)
    ]
    await commit(db, box, token_id, records, NOW)
    written = await states(db)
    assert written == {f"S{n}": state_without_steps(status) for n, status in enumerate(STATUSES)}
    assert written["S2"] == "pushed" and written["S0"] == "not_contacted"
    async with db.write() as session:
        await refresh_where(session, devices.c.token_id == token_id, NOW)
    assert await states(db) == written


async def test_the_state_follows_the_profile_status_until_a_step_is_known(
    db: Database, box: SecretBox
) -> None:
    token_id = await insert_token(db, box)
    await commit(db, box, token_id, [record("A", "added", NOW), record("B", "added", NOW)], NOW)
    later = NOW + timedelta(hours=2)
    pushed = [
        record("A", "modified", later, profile_status="pushed"),
        record("B", "modified", later, profile_status="pushed"),
    ]
    # B enrolled meanwhile (as the events would have set it).
    async with db.write() as session:
        await session.execute(
            update(devices)
            .where(devices.c.serial_number == "B")
            .values(mdm_enrolled_at=NOW, enrollment_state="enrolled")
        )
    await commit(db, box, token_id, pushed, later)
    assert await states(db) == {"A": "pushed", "B": "enrolled"}

    # Apple's profile removed again: A goes back, B keeps what its steps say.
    removed = [
        record("A", "modified", later + timedelta(hours=1), profile_status="removed"),
        record("B", "modified", later + timedelta(hours=1), profile_status="removed"),
    ]
    await commit(db, box, token_id, removed, later + timedelta(hours=1))
    assert await states(db) == {"A": "not_contacted", "B": "enrolled"}


@pytest.mark.parametrize("status", STATUSES)
def test_state_without_steps(status: str | None) -> None:
    expected = "pushed" if status == "pushed" else "not_contacted"
    assert state_without_steps(status) == expected
