"""``adesync devices import-enrollments`` and ``devices list --enrollment-state``, in-process
against an initialised installation on both backends."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert

from adesync.store.database import Database
from adesync.store.tables_sync import devices
from adesync.store.types import utcnow
from tests.cli_runner import invoke
from tests.conftest import Home
from tests.enrollment.helpers import event_count
from tests.health.factory import add_token


async def seed_devices(home: Home) -> None:
    """Two devices of token ``lab`` that downloaded their profile a day ago."""
    db = Database(home.db_url)
    now = utcnow()
    try:
        token_id = await add_token(db, "lab")
        async with db.write() as session:
            await session.execute(
                insert(devices),
                [
                    {
                        "token_id": token_id,
                        "serial_number": serial,
                        "profile_status": "pushed",
                        "profile_push_time": now - timedelta(days=1),
                        "enrollment_state": "pushed",
                        "first_seen_at": now,
                        "updated_at": now,
                    }
                    for serial in ("C02AAA0001", "C02AAA0002")
                ],
            )
    finally:
        await db.dispose()


async def count(home: Home) -> int:
    db = Database(home.db_url)
    try:
        return await event_count(db)
    finally:
        await db.dispose()


def recent(hours: int) -> str:
    return (utcnow() - timedelta(hours=hours)).replace(microsecond=0).isoformat()


async def test_import_csv_then_list_by_enrollment_state(
    home: Home, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await seed_devices(home)
    csv_file = tmp_path / "events.csv"
    csv_file.write_text(
        "\ufeffSerial_Number,event,at,comment\n"
        f"c02aaa0001,authenticated,{recent(3)},first boot\n"
        f"C02AAA0001,enrolled,{recent(3)},\n"
        "\n"
        f"NOTSYNCED1,authenticated,{recent(2)},arrives later\n",
        encoding="utf-8",
    )
    result = invoke(capsys, "devices", "import-enrollments", str(csv_file), "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out) == {"recorded": 3, "duplicates": 0, "unknown_serials": 1}

    again = invoke(capsys, "devices", "import-enrollments", str(csv_file))
    assert again.code == 0
    assert "Recorded 0 enrollment event(s) from events.csv; 3 already known." in again.out
    assert await count(home) == 3

    listed = invoke(capsys, "devices", "list", "--enrollment-state", "enrolled", "--json")
    assert listed.code == 0, listed.err
    rows = json.loads(listed.out)
    assert [(r["serial_number"], r["enrollment_state"]) for r in rows] == [
        ("C02AAA0001", "enrolled")
    ]
    pushed = json.loads(
        invoke(capsys, "devices", "list", "--enrollment-state", "pushed", "--json").out
    )
    assert [r["serial_number"] for r in pushed] == ["C02AAA0002"]


async def test_import_json(home: Home, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await seed_devices(home)
    path = tmp_path / "events.json"
    path.write_text(
        json.dumps(
            {
                "events": [
                    {"serial_number": "C02AAA0002", "event": "authenticated", "at": recent(30)},
                ]
            }
        )
    )
    result = invoke(capsys, "devices", "import-enrollments", str(path))
    assert result.code == 0, result.err
    failed = json.loads(
        invoke(capsys, "devices", "list", "--enrollment-state", "failed", "--json").out
    )
    assert [r["serial_number"] for r in failed] == ["C02AAA0002"]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "bad.csv",
            "serial_number,event,at\nC02AAA0001,enrolled,2026-01-01T00:00:00Z\nC02AAA0002,oops,2026-01-01T00:00:00Z\n",
            "Line 3: event 'oops' is not one of authenticated, enrolled, checked_out.",
        ),
        (
            "header.csv",
            "serial,at\nC02AAA0001,2026-01-01T00:00:00Z\n",
            "The CSV header must name serial_number, event, at (missing: serial_number, event).",
        ),
        ("broken.json", '[{"serial_number": "C02"', "The file is not valid JSON (line 1)."),
        (
            "object.json",
            '{"serial_number": "C02AAA0001"}',
            'The JSON file must be an array of events or an object with an "events" array.',
        ),
        (
            "zone.json",
            '[{"serial_number": "C02AAA0001", "event": "enrolled", "at": "2026-01-01 10:00"}]',
            "Event 1: at '2026-01-01 10:00' has no time zone; add Z for UTC or an offset.",
        ),
        ("empty.csv", "serial_number,event,at\n", "holds no events."),
    ],
)
async def test_a_bad_file_records_nothing(
    home: Home,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    text: str,
    message: str,
) -> None:
    path = tmp_path / name
    path.write_text(text)
    result = invoke(capsys, "devices", "import-enrollments", str(path))
    assert result.code == 1
    assert message in " ".join(result.err.split())
    assert len(result.err.strip().splitlines()) <= 2  # one sentence, wrapped at most once
    assert await count(home) == 0


async def test_a_missing_file_is_named(
    home: Home, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = invoke(capsys, "devices", "import-enrollments", str(tmp_path / "nope.csv"))
    assert result.code == 1 and "nope.csv does not exist." in " ".join(result.err.split())


async def test_an_unknown_enrollment_state_is_refused(
    home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    result = invoke(capsys, "devices", "list", "--enrollment-state", "done")
    assert result.code == 1
    assert (
        "--enrollment-state 'done' is not one of not_contacted, pushed, enrolled, checked_out, "
        "failed." in " ".join(result.err.split())
    )
