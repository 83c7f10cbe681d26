"""The simulated world: organisations, MDM servers, tokens, sessions and device state.

A server's devices are its generated baseline (see :mod:`adesync.simulator.catalog`) plus an
*overlay* of the devices that differ from it, and an append-only event log. Memory therefore
grows with what changed, never with the number of devices served.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any, Literal

from cryptography import x509

from adesync.simulator.catalog import DeviceCatalog, format_time
from adesync.simulator.faults import FaultPlan

__all__ = [
    "IDENTITY_FIELDS",
    "DeviceEntry",
    "Event",
    "Org",
    "Server",
    "Session",
    "Token",
    "TokenState",
    "render_record",
]

OpType = Literal["added", "modified", "deleted"]
TokenState = Literal["active", "superseded", "revoked"]
# What a "deleted" sync record carries (Apple's example has no profile fields).
IDENTITY_FIELDS = (
    "serial_number",
    "model",
    "description",
    "color",
    "os",
    "device_family",
    "device_assigned_date",
    "device_assigned_by",
)


@dataclass(slots=True)
class Org:
    """An organisation in ABM/ASM; ``terms_pending`` makes Apple answer ``T_C_NOT_SIGNED``."""

    org_id: str
    name: str
    domain: str
    email: str
    phone: str
    address: str
    org_type: str
    org_version: str
    org_id_hash: str
    terms_pending: bool = False

    def describe(self) -> dict[str, Any]:
        return {
            "org_id": self.org_id,
            "name": self.name,
            "domain": self.domain,
            "email": self.email,
            "phone": self.phone,
            "address": self.address,
            "org_type": self.org_type,
            "org_version": self.org_version,
            "org_id_hash": self.org_id_hash,
            "terms_pending": self.terms_pending,
        }


@dataclass(slots=True)
class Token:
    """One downloaded server token: the four OAuth values and when it expires."""

    server_uuid: str
    consumer_key: str
    consumer_secret: str
    access_token: str
    access_secret: str
    expiry: int
    issued: int
    state: TokenState = "active"

    def payload(self) -> dict[str, str]:
        """The JSON inside the ``.p7m``, field for field as Apple writes it."""
        return {
            "consumer_key": self.consumer_key,
            "consumer_secret": self.consumer_secret,
            "access_token": self.access_token,
            "access_secret": self.access_secret,
            "access_token_expiry": format_time(self.expiry),
        }


@dataclass(slots=True)
class Session:
    """An ``X-ADM-Auth-Session`` issued by ``/session`` for one token."""

    server_uuid: str
    access_token: str
    last_used: float
    answered: int = 0


class DeviceEntry:
    """A device that differs from the generated baseline, or was never part of it.

    ``record`` is always the last known state (kept when the device leaves, for ``deleted``
    records); ``roster_pos`` is the fetch position of its current membership.
    """

    __slots__ = ("locked", "present", "record", "roster_pos")

    def __init__(self, record: dict[str, Any], present: bool, roster_pos: int | None) -> None:
        self.record = record
        self.present = present
        self.roster_pos = roster_pos
        self.locked = False


Event = tuple[str, OpType, int]  # (serial, op_type, op_date epoch seconds)


def render_record(
    record: dict[str, Any], version: int, op: tuple[str, int] | None = None
) -> dict[str, Any]:
    """``record`` as a client of protocol ``version`` sees it, with ``op_type``/``op_date``."""
    if op is not None and op[0] == "deleted":
        shown = {k: record[k] for k in IDENTITY_FIELDS if k in record}
    else:
        shown = dict(record)
    if version < 2:
        shown.pop("os", None)
        shown.pop("device_family", None)
    elif version < 7 and shown.get("os") == "iPadOS":
        shown["os"] = "iOS"
    if version < 8:
        shown.pop("mdm_migration_deadline", None)
    if op is not None:
        shown["op_type"] = op[0]
        shown["op_date"] = format_time(op[1])
    return shown


@dataclass
class Server:
    """One MDM server in ABM/ASM, its token, its devices and its faults."""

    uuid: str
    name: str
    org: Org
    admin_id: str
    ordinal: int
    catalog: DeviceCatalog
    created: int
    token: Token
    certificate: x509.Certificate | None = None
    deleted: bool = False
    overlay: dict[str, DeviceEntry] = field(default_factory=dict)
    # Baseline indices with an overlay entry, so a fetch page need not look serials up.
    baseline_changed: set[int] = field(default_factory=set)
    roster_extra: list[str] = field(default_factory=list)
    roster_seq: list[int] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    throttled: dict[str, float] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    faults: FaultPlan = field(default_factory=FaultPlan)
    cursor_floor_ms: int = -1
    # The issue time of the newest cursor: each answer's cursor is issued later than the last,
    # so two answers in the same millisecond still get cursors of their own.
    last_cursor_ms: int = -1
    expired_cursors: set[tuple[str, int, int, int]] = field(default_factory=set)
    next_index: int = 0
    present_count: int = 0
    assign_window: tuple[float, int] = (0.0, 0)

    # -- reading ----------------------------------------------------------------------------

    @property
    def baseline_count(self) -> int:
        return self.catalog.count

    @property
    def last_sequence(self) -> int:
        return len(self.events)

    def roster_end(self, sequence: int) -> int:
        """How many fetch positions exist in the snapshot taken at event ``sequence``."""
        return self.baseline_count + bisect_right(self.roster_seq, sequence)

    def current(self, serial: str) -> dict[str, Any] | None:
        """The device's record if it is assigned to this server now, else ``None``."""
        entry = self.overlay.get(serial)
        if entry is not None:
            return entry.record if entry.present else None
        index = self.catalog.index_of(serial)
        return None if index is None else self.catalog.record(index, serial)

    def known(self, serial: str) -> dict[str, Any] | None:
        """The last known record of a device that is or was on this server."""
        entry = self.overlay.get(serial)
        if entry is not None:
            return entry.record
        index = self.catalog.index_of(serial)
        return None if index is None else self.catalog.record(index, serial)

    def editable(self, serial: str) -> DeviceEntry | None:
        """The overlay entry of a present device, created from the baseline when needed."""
        entry = self.overlay.get(serial)
        if entry is not None:
            return entry if entry.present else None
        index = self.catalog.index_of(serial)
        if index is None:
            return None
        entry = DeviceEntry(self.catalog.record(index, serial), True, index)
        self.overlay[serial] = entry
        self.baseline_changed.add(index)
        return entry

    # -- changing ---------------------------------------------------------------------------

    def emit(self, serial: str, op_type: OpType, op_date: int) -> None:
        self.events.append((serial, op_type, op_date))

    def add(self, record: dict[str, Any], op_type: OpType, now: int) -> None:
        """Assign a device (not present here) to this server and log ``op_type``."""
        serial = record["serial_number"]
        self.emit(serial, op_type, now)
        self.roster_extra.append(serial)
        self.roster_seq.append(self.last_sequence)
        position = self.baseline_count + len(self.roster_extra) - 1
        self.overlay[serial] = DeviceEntry(record, True, position)
        index = self.catalog.index_of(serial)
        if index is not None:
            self.baseline_changed.add(index)
        self.present_count += 1

    def remove(self, serial: str, now: int) -> dict[str, Any]:
        """Take a present device off this server, log ``deleted``; returns its record."""
        entry = self.editable(serial)
        if entry is None:
            raise KeyError(serial)
        entry.present = False
        entry.roster_pos = None
        entry.locked = False
        self.present_count -= 1
        self.emit(serial, "deleted", now)
        return entry.record

    def modify(self, serial: str, changes: dict[str, Any], now: int) -> None:
        """Change fields of a present device and log ``modified``."""
        entry = self.editable(serial)
        if entry is None:
            raise KeyError(serial)
        for key, value in changes.items():
            if value is None:
                entry.record.pop(key, None)
            else:
                entry.record[key] = value
        self.emit(serial, "modified", now)
