"""Plain values the sync engine passes around (no database or HTTP types)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
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


@dataclass
class DeviceRecord:
    """One device as Apple listed it on a page (fields named as Apple names them)."""

    serial_number: str
    fields: dict[str, Any]
    op_type: str | None
    op_date: datetime | None


@dataclass
class PageResult:
    """What committing one page changed."""

    added: int = 0
    modified: int = 0
    deleted: int = 0
    skipped_stale: int = 0
    # Live devices of this page that the assigner should consider.
    to_assign: list[str] = field(default_factory=list)


@dataclass
class RunTotals:
    kind: str = "sync"
    pages: int = 0
    devices: int = 0
    added: int = 0
    modified: int = 0
    deleted: int = 0
    assigned: int = 0
    cursor_recovered: bool = False

    def add_page(self, result: PageResult, device_count: int) -> None:
        self.pages += 1
        self.devices += device_count
        self.added += result.added
        self.modified += result.modified
        self.deleted += result.deleted
