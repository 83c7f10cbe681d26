"""Plain values the sync engine passes around (no database or HTTP types)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

# Apple's device fields a DeviceRecord keeps and the devices table stores (serial aside).
APPLE_DEVICE_FIELDS = (
    "model",
    "description",
    "color",
    "asset_tag",
    "os",
    "device_family",
    "profile_status",
    "profile_uuid",
    "profile_assign_time",
    "profile_push_time",
    "device_assigned_date",
    "device_assigned_by",
    "mdm_migration_deadline",
)


@dataclass(frozen=True)
class OAuthValues:
    consumer_key: str
    consumer_secret: str
    access_token: str
    access_secret: str


@dataclass
class TokenSyncState:
    """What one sync of one token starts from."""

    token_id: int
    name: str
    dep_url: str
    credentials: OAuthValues | None
    cursor: str | None
    fetch_started_at: datetime | None
    last_full_fetch_at: datetime | None
    default_profile_uuid: str | None
    last_manual_sync_at: datetime | None
    throttled_until: datetime | None = None  # Apple's Retry-After: no manual sync before it
    dep_url_checked: bool = False  # set through the API/console: connections are checked


_PROFILE_STATUS = APPLE_DEVICE_FIELDS.index("profile_status")
_PROFILE_UUID = APPLE_DEVICE_FIELDS.index("profile_uuid")


@dataclass(slots=True)
class DeviceRecord:
    """One device as Apple listed it on a page: its fields' ``values`` in APPLE_DEVICE_FIELDS
    order (a tuple, not a dict: a page holds a thousand of them and they go to the database as
    rows)."""

    serial_number: str
    values: tuple[Any, ...]
    op_type: str | None
    op_date: datetime | None

    @classmethod
    def from_fields(
        cls,
        serial_number: str,
        fields: Mapping[str, Any],
        op_type: str | None = None,
        op_date: datetime | None = None,
    ) -> DeviceRecord:
        """A record from fields named as Apple names them (missing ones are None)."""
        return cls(serial_number, tuple(map(fields.get, APPLE_DEVICE_FIELDS)), op_type, op_date)

    @property
    def fields(self) -> dict[str, Any]:
        return dict(zip(APPLE_DEVICE_FIELDS, self.values, strict=True))

    @property
    def profile_status(self) -> str | None:
        status: str | None = self.values[_PROFILE_STATUS]
        return status

    @property
    def profile_uuid(self) -> str | None:
        uuid: str | None = self.values[_PROFILE_UUID]
        return uuid

    def document(self) -> dict[str, Any]:
        """The record as one JSON-ready mapping (Apple's names; what device events carry)."""
        return {
            "serial_number": self.serial_number,
            "op_type": self.op_type,
            "op_date": self.op_date,
            **self.fields,
        }


@dataclass(frozen=True)
class DerivedDeviceColumn:
    """A column on ``devices`` that another feature derives from Apple's fields, written by the
    page's own upsert (so the page's rows are not written a second time).

    ``for_record`` gives the value for a device written from a page; ``on_update`` is the SQL
    the upsert sets it to when the device is already stored, over ``devices.<column>`` (the
    stored row) and ``excluded.<column>`` (the row being written, holding ``for_record``'s
    value). It is the same text on SQLite and PostgreSQL.
    """

    name: str
    for_record: Callable[[DeviceRecord], Any]
    on_update: str


@dataclass
class PageResult:
    """What committing one page changed. A live device is ``added`` when the store does not
    hold it for this token or holds it as deleted (it came back), ``modified`` when one of its
    stored Apple fields (APPLE_DEVICE_FIELDS) changed, else ``unchanged``."""

    added: int = 0
    modified: int = 0
    unchanged: int = 0
    deleted: int = 0
    skipped_stale: int = 0
    # Live devices of this page that the assigner should consider.
    to_assign: list[str] = field(default_factory=list)


class RunOutcome(StrEnum):
    """How a sync run (a row of ``sync_runs``) stands: ``running`` until it ends."""

    RUNNING = "running"
    OK = "ok"
    ERROR = "error"
    THROTTLED = "throttled"
    # Stopped by a signal or a shutdown, or its process died (closed once its lease expired).
    INTERRUPTED = "interrupted"


@dataclass
class RunTotals:
    kind: str = "sync"
    pages: int = 0
    devices: int = 0
    added: int = 0
    modified: int = 0
    deleted: int = 0
    unchanged: int = 0
    assigned: int = 0
    cursor_recovered: bool = False

    def add_page(self, result: PageResult, device_count: int) -> None:
        self.pages += 1
        self.devices += device_count
        self.added += result.added
        self.modified += result.modified
        self.deleted += result.deleted
        self.unchanged += result.unchanged
