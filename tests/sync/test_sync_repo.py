"""Device upsert semantics of the sync store, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from adesync.store.database import Database
from adesync.store.secrets import SecretBox
from adesync.store.sync_repo import LeaseLost, SyncRepo, latest_per_serial
from adesync.store.tables import tokens
from adesync.sync.model import DeviceRecord, PageResult
from tests.sync.helpers import T0, device_rows, insert_token, record


def test_latest_op_date_wins_within_a_page() -> None:
    records = [
        record("A", "modified", T0 + timedelta(minutes=5), color="red"),
        record("A", "added", T0, color="blue"),
        record("B", "added", T0),
    ]
    chosen = {r.serial_number: r for r in latest_per_serial(records)}
    assert chosen["A"].fields["color"] == "red"
    assert set(chosen) == {"A", "B"}


async def test_a_fetch_page_prepared_ahead_is_written_only_for_its_own_fetch(
    db: Database, box: SecretBox
) -> None:
    token_id = await insert_token(db, box)
    repo = SyncRepo(db, box)
    await repo.start_full_fetch(token_id, "w1", T0)
    page = [record("A", color="red"), record("A", "modified", T0 + timedelta(1), color="blue")]
    prepared = repo.prepare_fetch_page(token_id, page, T0, T0)
    assert [r.serial_number for r in prepared.unique] == ["A"]
    result = await repo.commit_page(
        token_id, "w1", page, "c1", fetch_started_at=T0, completes_fetch=False, now=T0,
        prepared=prepared,
    )  # fmt: skip
    assert result.added == 1
    rows = await device_rows(db, token_id)
    assert rows["A"].color == "blue" and rows["A"].seen_in_fetch == T0
    # Rows prepared for another fetch (the engine restarted it) are built again, not written.
    later = T0 + timedelta(days=8)
    await repo.start_full_fetch(token_id, "w1", later)
    stale = repo.prepare_fetch_page(token_id, [record("A", color="green")], T0, T0)
    fresh = [record("A", color="white")]
    await repo.commit_page(
        token_id, "w1", fresh, "c2", fetch_started_at=later, completes_fetch=True, now=later,
        prepared=stale,
    )  # fmt: skip
    rows = await device_rows(db, token_id)
    assert rows["A"].color == "white" and rows["A"].seen_in_fetch == later
    assert rows["A"].deleted is False


async def test_a_second_fetch_counts_what_changed_and_a_complete_fetch_marks_the_rest_deleted(
    db: Database, box: SecretBox
) -> None:
    token_id = await insert_token(db, box)
    repo = SyncRepo(db, box)
    await repo.start_full_fetch(token_id, "w1", T0)
    first = await repo.commit_page(
        token_id,
        "w1",
        [record("A"), record("B")],
        "c1",
        fetch_started_at=T0,
        completes_fetch=True,
        now=T0,
    )
    assert (first.added, first.deleted) == (2, 0)
    assert sorted(first.to_assign) == ["A", "B"]
    # A second full fetch no longer returns B.
    later = T0 + timedelta(days=8)
    await repo.start_full_fetch(token_id, "w1", later)
    second = await repo.commit_page(
        token_id,
        "w1",
        [record("A", profile_status="assigned")],
        "c2",
        fetch_started_at=later,
        completes_fetch=True,
        now=later,
    )
    assert (second.added, second.modified, second.unchanged, second.deleted) == (0, 1, 0, 1)
    assert second.to_assign == []  # known and already assigned
    rows = await device_rows(db, token_id)
    assert rows["A"].deleted is False and rows["B"].deleted is True

    async with db.read() as session:
        token = (await session.execute(select(tokens).where(tokens.c.id == token_id))).one()
    assert token.cursor == "c2"
    assert token.fetch_started_at is None
    assert token.last_full_fetch_at == later

    # Without a default profile nothing is looked up for the assigner; the page is the same.
    await repo.start_full_fetch(token_id, "w1", later)
    third = await repo.commit_page(
        token_id,
        "w1",
        [record("C")],
        "c3",
        fetch_started_at=later,
        completes_fetch=False,
        now=later,
        assigning=False,
    )
    assert (third.added, third.to_assign) == (1, [])
    assert "C" in await device_rows(db, token_id)


async def test_a_refetch_counts_stored_devices_as_unchanged_unless_an_apple_field_changed(
    db: Database, box: SecretBox
) -> None:
    token_id = await insert_token(db, box)
    repo = SyncRepo(db, box)
    # Timestamps and a string longer than its column: compared as they are stored.
    stamped = {
        "profile_assign_time": T0 - timedelta(days=3, microseconds=7),
        "device_assigned_date": T0 - timedelta(days=30),
        "description": "x" * 300,
    }
    page = [record("A", **stamped), record("B", **stamped), record("C")]

    async def fetch(at: datetime, records: list[DeviceRecord], complete: bool) -> PageResult:
        await repo.start_full_fetch(token_id, "w1", at)
        return await repo.commit_page(
            token_id, "w1", records, f"c{at}", fetch_started_at=at, completes_fetch=complete,
            now=at, assigning=False,
        )  # fmt: skip

    first = await fetch(T0, page, True)
    assert (first.added, first.modified, first.unchanged) == (3, 0, 0)
    again = await fetch(T0 + timedelta(days=8), page, True)
    assert (again.added, again.modified, again.unchanged, again.deleted) == (0, 0, 3, 0)
    changed = [record("A", **{**stamped, "color": "red"}), record("B", **stamped)]
    third = await fetch(T0 + timedelta(days=16), changed, True)  # C is gone
    assert (third.added, third.modified, third.unchanged, third.deleted) == (0, 1, 1, 1)
    # A device stored as deleted that a fetch returns again counts as added.
    back = await fetch(T0 + timedelta(days=24), [*changed, record("C")], False)
    assert (back.added, back.modified, back.unchanged) == (1, 0, 2)
    # A record older than the stored operation is left as stored, and counted as stale.
    newer = T0 + timedelta(days=30)
    await repo.commit_page(
        token_id, "w1", [record("C", "modified", newer, color="blue")], "s", fetch_started_at=None,
        completes_fetch=False, now=newer,
    )  # fmt: skip
    older = record("C", "modified", newer - timedelta(hours=1), color="green")
    stale = await fetch(newer, [older], False)
    assert (stale.added, stale.modified, stale.unchanged, stale.skipped_stale) == (0, 0, 0, 1)
    assert (await device_rows(db, token_id))["C"].color == "blue"


async def test_sync_ops_count_by_what_the_store_holds_not_by_the_op_type(
    db: Database, box: SecretBox
) -> None:
    token_id = await insert_token(db, box)
    repo = SyncRepo(db, box)

    async def sync(at: datetime, records: list[DeviceRecord]) -> PageResult:
        return await repo.commit_page(
            token_id, "w1", records, "s", fetch_started_at=None, completes_fetch=False, now=at,
        )  # fmt: skip

    b = {"profile_status": "assigned"}
    first = await sync(T0, [record("A", "added", T0), record("B", "added", T0, **b)])
    assert (first.added, first.modified, first.unchanged) == (2, 0, 0)
    later = T0 + timedelta(hours=1)
    # Apple says "added" again for A and "modified" for B, but only B's colour changed.
    second = await sync(
        later, [record("A", "added", later), record("B", "modified", later, color="red", **b)]
    )
    assert (second.added, second.modified, second.unchanged) == (0, 1, 1)
    assert sorted(second.to_assign) == ["A"]  # an "added" is offered to the assigner as before


async def test_sync_ops_apply_latest_first_and_skip_stale_ones(
    db: Database, box: SecretBox
) -> None:
    token_id = await insert_token(db, box)
    repo = SyncRepo(db, box)
    result = await repo.commit_page(
        token_id,
        "w1",
        [
            record("A", "added", T0),
            record("B", "modified", T0, color="green"),  # unknown serial: counts as added
            record("C", "deleted", T0),
        ],
        "s1",
        fetch_started_at=None,
        completes_fetch=False,
        now=T0,
    )
    assert (result.added, result.modified, result.deleted) == (2, 0, 1)
    later = T0 + timedelta(hours=1)
    result = await repo.commit_page(
        token_id,
        "w1",
        [
            record("A", "modified", later, color="black"),
            record("B", "modified", T0 - timedelta(hours=1), color="stale"),
            record("A", "deleted", later + timedelta(minutes=1)),
        ],
        "s2",
        fetch_started_at=None,
        completes_fetch=False,
        now=later,
    )
    assert result.deleted == 1 and result.skipped_stale == 1
    rows = await device_rows(db, token_id)
    assert rows["A"].deleted is True
    assert rows["B"].color == "green"
    assert rows["C"].deleted is True
    # A device re-added after deletion is live again and counted as added.
    again = await repo.commit_page(
        token_id,
        "w1",
        [record("A", "added", later + timedelta(hours=1))],
        "s3",
        fetch_started_at=None,
        completes_fetch=False,
        now=later,
    )
    assert again.added == 1 and again.to_assign == ["A"]
    assert (await device_rows(db, token_id))["A"].deleted is False


async def test_a_worker_without_the_lease_cannot_write(db: Database, box: SecretBox) -> None:
    token_id = await insert_token(db, box, lease_owner="other")
    repo = SyncRepo(db, box)
    with pytest.raises(LeaseLost):
        await repo.commit_page(
            token_id,
            "w1",
            [record("A")],
            "c1",
            fetch_started_at=None,
            completes_fetch=False,
            now=T0,
        )
    assert await device_rows(db, token_id) == {}
    # Nor a fetch page (checked as its cursor is stored, after the devices' upsert).
    with pytest.raises(LeaseLost, match="leased by 'other'"):
        await repo.commit_page(
            token_id, "w1", [record("B")], "c2", fetch_started_at=T0, completes_fetch=True,
            now=T0,
        )  # fmt: skip
    assert await device_rows(db, token_id) == {}
    async with db.read() as session:
        stored = (await session.execute(select(tokens.c.cursor))).scalar_one()
    assert stored is None


async def test_errors_set_flags_and_success_clears_them(db: Database, box: SecretBox) -> None:
    token_id = await insert_token(db, box)
    repo = SyncRepo(db, box)
    streak = await repo.record_error(
        token_id,
        "terms_not_accepted",
        403,
        '"T_C_NOT_SIGNED"',
        T0,
        clock_skew=1.5,
        throttled_until=None,
        synced=True,
    )
    assert streak == 1
    streak = await repo.record_error(
        token_id,
        "terms_not_accepted",
        403,
        '"T_C_NOT_SIGNED"',
        T0 + timedelta(minutes=5),
        clock_skew=None,
        throttled_until=None,
        synced=True,
    )
    assert streak == 2
    async with db.read() as session:
        row = (await session.execute(select(tokens).where(tokens.c.id == token_id))).one()
    assert row.terms_not_accepted is True and row.failing_since == T0
    assert row.last_error_code == "terms_not_accepted"
    await repo.record_success(token_id, T0 + timedelta(hours=1), 0.2, synced=True)
    async with db.read() as session:
        row = (await session.execute(select(tokens).where(tokens.c.id == token_id))).one()
    assert row.terms_not_accepted is False and row.consecutive_failures == 0
    assert row.failing_since is None and row.last_successful_sync_at is not None


@pytest.mark.parametrize("fails", [False, True])
async def test_page_events_are_written_in_the_pages_transaction(
    db: Database, box: SecretBox, fails: bool
) -> None:
    from collections.abc import Sequence

    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import AsyncSession

    token_id = await insert_token(db, box)
    written: list[tuple[int, str, list[str]]] = []

    async def page_events(
        session: AsyncSession, token: int, kind: str, records: Sequence[DeviceRecord], now: datetime
    ) -> None:
        # In the page's transaction: its devices are there already, its cursor not yet.
        stored = await session.execute(text("SELECT count(*) FROM devices"))
        cursor = await session.execute(text("SELECT cursor FROM tokens"))
        assert (stored.scalar_one(), cursor.scalar_one()) == (len(records), None)
        written.append((token, kind, [r.serial_number for r in records]))
        if fails:
            raise RuntimeError("the events could not be written")

    repo = SyncRepo(db, box, page_events=page_events)
    commit = repo.commit_page(
        token_id, "w1", [record("A"), record("B")], "c1", fetch_started_at=None,
        completes_fetch=False, now=T0,
    )  # fmt: skip
    if fails:
        with pytest.raises(RuntimeError):
            await commit
    else:
        await commit
    assert written == [(token_id, "sync", ["A", "B"])]
    # A page is stored with its events or not at all.
    assert len(await device_rows(db, token_id)) == (0 if fails else 2)
    async with db.read() as session:
        cursor = (await session.execute(select(tokens.c.cursor))).scalar_one()
    assert cursor == (None if fails else "c1")
