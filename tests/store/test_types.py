"""Reading stored timestamps: every form a driver returns comes back aware, in UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from adesync.store.types import from_stored_datetime

NOON = datetime(2026, 12, 1, 12, 0, 0, 250000, tzinfo=UTC)


@pytest.mark.parametrize(
    "stored",
    [
        "2026-12-01 12:00:00.250000",  # how SQLite keeps them (naive, meaning UTC)
        "2026-12-01T12:00:00.250000",
        "2026-12-01T14:00:00.250000+02:00",  # text that carries its own offset
        datetime(2026, 12, 1, 12, 0, 0, 250000),  # naive, meaning UTC
        datetime(2026, 12, 1, 7, 0, 0, 250000, tzinfo=timezone(timedelta(hours=-5))),
    ],
)
def test_a_stored_timestamp_reads_back_aware_in_utc(stored: object) -> None:
    value = from_stored_datetime(stored)
    assert value == NOON
    assert value is not None and value.tzinfo is UTC


def test_whole_seconds_and_dates_and_none() -> None:
    assert from_stored_datetime("2026-12-01 12:00:00") == NOON.replace(microsecond=0)
    midnight = from_stored_datetime("2026-12-01")
    assert midnight == datetime(2026, 12, 1, tzinfo=UTC) and midnight.tzinfo is UTC
    assert from_stored_datetime(None) is None


def test_text_that_is_no_timestamp_is_an_error() -> None:
    with pytest.raises(ValueError):
        from_stored_datetime("not a time")
