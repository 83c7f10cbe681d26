"""Counting a page's devices as added, modified, unchanged or stale, from what the store held
of them before the page (see :class:`adesync.sync.model.PageResult`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from adesync.store.bulk import BulkWrite
from adesync.store.types import from_stored_datetime
from adesync.sync.model import APPLE_DEVICE_FIELDS, DeviceRecord, PageResult

# What a page reads of its stored devices, and where Apple's fields sit in a _live_row.
STORED_COLUMNS = ("last_op_date", "deleted", *APPLE_DEVICE_FIELDS)
_ROW_FIELDS = slice(2, 2 + len(APPLE_DEVICE_FIELDS))


class StoredDevice(NamedTuple):
    """A device row as a page finds it: values as the driver returns them, so ``values``
    compares equal to the Apple fields of a _live_row (timestamps through ``stamp``)."""

    op_date: Any
    deleted: bool
    values: tuple[Any, ...]


def is_stale(stored: StoredDevice, record: DeviceRecord) -> bool:
    """The stored operation is newer than the record's (the upserts then leave the row)."""
    if stored.op_date is None or record.op_date is None:
        return False
    stored_date = from_stored_datetime(stored.op_date)
    return stored_date is not None and record.op_date < stored_date


class Found(NamedTuple):
    """A page's device as the store held it before the page: ``same`` when its stored Apple
    fields equal the page's, ``stale`` when its stored operation is newer than the page's."""

    deleted: bool
    same: bool
    stale: bool


def found_from(stored: StoredDevice, record: DeviceRecord, row: Sequence[Any]) -> Found:
    """``stored`` compared with the ``row`` (a _live_row) about to be written for ``record``."""
    same = stored.values == tuple(row[_ROW_FIELDS])
    return Found(stored.deleted, same, is_stale(stored, record))


def count_device(result: PageResult, found: Found | None) -> None:
    """Count a live device of a page: skipped when stale (the upserts leave its row), added
    when the store did not hold it or held it as deleted, modified when one of its stored
    Apple fields differs, else unchanged."""
    if found is not None and found.stale:
        result.skipped_stale += 1
    elif found is None or found.deleted:
        result.added += 1
    elif found.same:
        result.unchanged += 1
    else:
        result.modified += 1


def counted_fetch_sql(upsert: BulkWrite) -> str:
    """PostgreSQL: the fetch upsert and, in the same statement (whose parts all read the
    database as it was before it), what was stored of the page's devices, as rows of
    (serial_number, deleted, same, stale) (one round trip, and three values a device)."""
    fields = ", ".join(APPLE_DEVICE_FIELDS)
    given = ("serial_number", *APPLE_DEVICE_FIELDS, "last_op_date")
    stored = ", ".join(f"d.{name}" for name in APPLE_DEVICE_FIELDS)
    new = ", ".join(f"n.{name}" for name in APPLE_DEVICE_FIELDS)
    # The probe of the serial index as in bulk.probe_devices (see its module doc).
    return (
        "WITH stored AS MATERIALIZED (SELECT n.serial_number, d.deleted, "  # noqa: S608
        f"({stored}) IS NOT DISTINCT FROM ({new}) AS same, "
        "d.last_op_date > n.last_op_date AS stale "
        f"FROM unnest({', '.join(upsert.arrays[name] for name in given)}) "
        f"AS n({', '.join(given)}) "
        f"CROSS JOIN LATERAL (SELECT token_id, deleted, last_op_date, {fields} FROM devices "
        "WHERE serial_number = n.serial_number OFFSET 0) AS d "
        "WHERE d.token_id = %(probe_token_id)s), "
        f"written AS ({upsert.sql}) "
        "SELECT serial_number, deleted, same, stale FROM stored"
    )
