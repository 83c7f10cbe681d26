"""``Simulator``: the state of a simulated Apple ADE service and the admin operations on it.

Every public method is thread-safe (one re-entrant lock), so a test may change the state while
the service answers from a uvicorn thread. Bad input raises ``AdminError`` and changes nothing.
"""

from __future__ import annotations

import hashlib
import random
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from adesync.simulator.answers import AdminError
from adesync.simulator.catalog import MAX_SERVERS, DeviceCatalog, format_time
from adesync.simulator.cursors import CursorCodec
from adesync.simulator.faults import FaultPlan, Outage, Throttle, parse_script, resolve_endpoint
from adesync.simulator.model import Org, Server, Session, Token
from adesync.simulator.oauth import NonceCache
from adesync.simulator.tokenfile import load_certificate, token_filename, token_p7m

__all__ = ["Settings", "Simulator", "TokenDownload"]

TOKEN_LIFETIME = 365 * 86400
MAX_DEVICES_PER_SERVER = 50_000_000
_MODIFIABLE = (
    "model",
    "description",
    "color",
    "asset_tag",
    "os",
    "device_family",
    "mdm_migration_deadline",
    "device_assigned_by",
)
_DOMAIN = re.compile(r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


@dataclass
class Settings:
    """Service-wide behaviour the admin API and scenarios can change (see docs/simulator.md)."""

    clock_offset_seconds: float = 0.0
    session_idle_seconds: float = 1800.0
    session_rotate_every: int = 0
    session_rotation_retires_old: bool = False
    rejected_user_agents: list[str] = field(default_factory=lambda: ["nanodep-godep/"])
    page_limit_default: int = 100
    page_limit_maximum: int = 1000
    cursor_max_age_seconds: int = 7 * 86400
    assign_rate_max_devices: int = 0
    assign_rate_window_seconds: int = 60

    def describe(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def update(self, changes: Mapping[str, Any]) -> None:
        """Apply ``changes`` once all are valid; ``AdminError`` names the first bad one."""
        known = {f.name: f for f in fields(self)}
        staged: dict[str, Any] = {}
        for name, value in changes.items():
            if name not in known:
                raise AdminError(f"Unknown setting {name!r}; known: {', '.join(sorted(known))}.")
            current = getattr(self, name)
            if isinstance(current, bool):
                ok = isinstance(value, bool)
            elif isinstance(current, list):
                ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
            elif isinstance(current, float):
                ok = isinstance(value, int | float) and not isinstance(value, bool)
                value = float(value) if ok else value
            else:
                ok = isinstance(value, int) and not isinstance(value, bool)
            if not ok:
                raise AdminError(f"Setting {name!r} needs a {type(current).__name__} value.")
            if name != "clock_offset_seconds" and not isinstance(value, list | bool) and value < 0:
                raise AdminError(f"Setting {name!r} cannot be negative.")
            staged[name] = value
        limit_default = staged.get("page_limit_default", self.page_limit_default)
        limit_maximum = staged.get("page_limit_maximum", self.page_limit_maximum)
        if not 1 <= limit_default <= limit_maximum:
            raise AdminError("page_limit_default must be between 1 and page_limit_maximum.")
        for name, value in staged.items():
            setattr(self, name, value)


@dataclass(frozen=True)
class TokenDownload:
    """What "Download Token" gives: the ``.p7m`` file (when a certificate is known) and its name."""

    server_uuid: str
    filename: str
    p7m: bytes | None
    token: Token

    def describe(self) -> dict[str, Any]:
        import base64

        return {
            "server_uuid": self.server_uuid,
            "filename": self.filename,
            "token_p7m": None if self.p7m is None else base64.b64encode(self.p7m).decode(),
            "access_token_expiry": format_time(self.token.expiry),
        }


def _parse_expiry(value: datetime | str | None, now: float) -> int:
    if value is None:
        return int(now) + TOKEN_LIFETIME
    if not isinstance(value, str | datetime):
        raise AdminError("token_expiry must be an ISO 8601 date-time.")
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise AdminError("token_expiry must be an ISO 8601 date-time.") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp())


def _serial_list(serials: Any) -> list[str]:
    if not isinstance(serials, list) or not serials or not all(isinstance(s, str) for s in serials):
        raise AdminError("serials must be a non-empty list of serial numbers.")
    return list(dict.fromkeys(serials))  # each serial once, in the order given


class Simulator:
    """A simulated Apple ADE service: organisations, MDM servers, tokens, devices and faults.

    ``devices`` is the default number of generated devices of each new server; ``seed`` makes
    serial numbers, server UUIDs and credentials reproducible; ``clock`` returns epoch seconds
    (the service's own clock before ``clock_offset_seconds``); ``epoch`` anchors the assignment
    dates of generated devices (default: the clock at construction).
    """

    def __init__(
        self,
        devices: int = 1000,
        seed: int = 0,
        clock: Callable[[], float] = time.time,
        epoch: float | None = None,
    ) -> None:
        if not 0 <= devices <= MAX_DEVICES_PER_SERVER:
            raise AdminError(f"devices must be between 0 and {MAX_DEVICES_PER_SERVER}.")
        self.lock = threading.RLock()
        self.default_devices = devices
        self.seed = seed
        self.clock = clock
        self.epoch = int(clock() if epoch is None else epoch)
        self.settings = Settings()
        self.faults = FaultPlan()
        self.cursors = CursorCodec(seed)
        self.nonces = NonceCache()
        self.orgs: dict[str, Org] = {}
        self.servers: dict[str, Server] = {}
        self.tokens: dict[str, Token] = {}
        self.sessions: dict[str, Session] = {}
        self._ordinals: list[Server] = []
        # Calls to Apple's endpoints answered so far, by endpoint name (``session``,
        # ``account``, ...): what a test counts to prove adesync did or did not call Apple.
        self.requests: Counter[str] = Counter()
        self._rng = random.Random(seed)
        self.default_org = self.create_org("Example Organisation", domain="example.com")

    # -- time -------------------------------------------------------------------------------

    def now(self) -> float:
        """The service's clock: ``clock()`` plus ``clock_offset_seconds``."""
        return self.clock() + self.settings.clock_offset_seconds

    def _hex(self, length: int) -> str:
        return f"{self._rng.getrandbits(length * 4):0{length}x}"

    def new_profile_uuid(self) -> str:
        """A profile UUID as Apple writes them: 32 uppercase hex digits."""
        with self.lock:
            return self._hex(32).upper()

    # -- organisations ----------------------------------------------------------------------

    def create_org(
        self,
        name: str,
        *,
        domain: str | None = None,
        email: str | None = None,
        phone: str = "+1 408 555 0100",
        address: str = "1 Infinite Loop, Cupertino, CA 95014",
        org_type: str = "org",
        org_version: str = "v2",
        org_id: str | None = None,
        terms_pending: bool = False,
    ) -> Org:
        """Create an organisation; ``domain`` (default from the name) makes the default emails."""
        with self.lock:
            if not isinstance(name, str) or not name.strip():
                raise AdminError("An organisation needs a name.")
            slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "org"
            domain = domain or f"{slug}.example"
            if not _DOMAIN.match(domain):
                raise AdminError(f"{domain!r} is not a mail domain.")
            if org_type not in ("edu", "org", "tvprovider"):
                raise AdminError("org_type must be edu, org or tvprovider.")
            if org_version not in ("v1", "v2"):
                raise AdminError("org_version must be v1 or v2.")
            org_id = org_id or str(self._rng.randrange(1_000_000, 9_999_999))
            if org_id in self.orgs:
                raise AdminError(f"An organisation with id {org_id} already exists.", 409)
            org = Org(
                org_id=org_id,
                name=name,
                domain=domain,
                email=email or f"it@{domain}",
                phone=phone,
                address=address,
                org_type=org_type,
                org_version=org_version,
                org_id_hash=hashlib.sha256(f"{self.seed}:{org_id}".encode()).hexdigest(),
                terms_pending=terms_pending,
            )
            self.orgs[org_id] = org
            return org

    def org(self, org_id: str) -> Org:
        with self.lock:
            org = self.orgs.get(org_id)
            if org is None:
                raise AdminError(f"No organisation has id {org_id!r}.", 404)
            return org

    def set_terms_pending(self, org_id: str, pending: bool = True) -> None:
        """New program terms to accept: every server of the org answers ``T_C_NOT_SIGNED``."""
        with self.lock:
            self.org(org_id).terms_pending = pending

    # -- servers and tokens -----------------------------------------------------------------

    def server(self, server_uuid: str) -> Server:
        with self.lock:
            server = self.servers.get(server_uuid.upper())
            if server is None:
                raise AdminError(f"No MDM server has UUID {server_uuid!r}.", 404)
            return server

    def server_by_ordinal(self, ordinal: int) -> Server | None:
        return self._ordinals[ordinal] if 0 <= ordinal < len(self._ordinals) else None

    def create_server(
        self,
        name: str,
        *,
        certificate_pem: str | bytes | None = None,
        devices: int | None = None,
        token_expiry: datetime | str | None = None,
        org_id: str | None = None,
        admin_id: str | None = None,
    ) -> TokenDownload:
        """Add an MDM server with generated devices and download its first token.

        Without a certificate the token exists (see ``credentials``) but no ``.p7m`` is made.
        """
        with self.lock:
            if not isinstance(name, str) or not name.strip():
                raise AdminError("An MDM server needs a name.")
            count = self.default_devices if devices is None else devices
            if not isinstance(count, int) or not 0 <= count <= MAX_DEVICES_PER_SERVER:
                raise AdminError(f"devices must be between 0 and {MAX_DEVICES_PER_SERVER}.")
            if len(self._ordinals) >= MAX_SERVERS:
                raise AdminError(f"The simulator holds at most {MAX_SERVERS} MDM servers.", 409)
            org = self.default_org if org_id is None else self.org(org_id)
            certificate = None if certificate_pem is None else self._certificate(certificate_pem)
            now = self.now()
            expiry = _parse_expiry(token_expiry, now)
            admin = admin_id or f"ade-admin@{org.domain}"
            if not isinstance(admin, str) or "@" not in admin:
                raise AdminError("admin_id must be an email address (an Apple Account).")
            ordinal = len(self._ordinals)
            server_uuid = self._hex(32).upper()
            catalog = DeviceCatalog(self.seed, ordinal, count, self.epoch, admin)
            token = Token(
                server_uuid=server_uuid,
                consumer_key="CK_" + self._hex(64),
                consumer_secret="CS_" + self._hex(40),
                access_token="",
                access_secret="",
                expiry=expiry,
                issued=int(now),
            )
            server = Server(
                uuid=server_uuid,
                name=name,
                org=org,
                admin_id=admin,
                ordinal=ordinal,
                catalog=catalog,
                created=int(now),
                token=token,
                certificate=certificate,
                next_index=count,
                present_count=count,
            )
            self._ordinals.append(server)
            self.servers[server_uuid] = server
            return self._issue(server, expiry, now)

    def _certificate(self, pem: str | bytes) -> Any:
        try:
            return load_certificate(pem)
        except ValueError as exc:
            raise AdminError(str(exc)) from None

    def _issue(self, server: Server, expiry: int, now: float) -> TokenDownload:
        # The consumer key and secret stay with the server; each download gets a new access
        # token, and the previous one stops working at once, as in ABM.
        previous = server.token
        if previous.access_token and previous.state == "active":
            previous.state = "superseded"
        token = Token(
            server_uuid=server.uuid,
            consumer_key=previous.consumer_key,
            consumer_secret=previous.consumer_secret,
            access_token=f"AT_O{self._rng.randrange(10**9, 10**10)}O{self._hex(40)}",
            access_secret="AS_" + self._hex(40),
            expiry=expiry,
            issued=int(now),
        )
        server.token = token
        self.tokens[token.access_token] = token
        issued = format_time(int(now))
        p7m = None if server.certificate is None else token_p7m(token.payload(), server.certificate)
        return TokenDownload(server.uuid, token_filename(server.name, issued), p7m, token)

    def download_token(
        self,
        server_uuid: str,
        *,
        certificate_pem: str | bytes | None = None,
        token_expiry: datetime | str | None = None,
    ) -> TokenDownload:
        """A new token for the server (optionally for a new certificate); the old one is void."""
        with self.lock:
            server = self.server(server_uuid)
            if server.deleted:
                raise AdminError("The MDM server was deleted; create a new one.", 409)
            certificate = None if certificate_pem is None else self._certificate(certificate_pem)
            now = self.now()
            expiry = _parse_expiry(token_expiry, now)
            if certificate is not None:
                server.certificate = certificate
            return self._issue(server, expiry, now)

    def credentials(self, server_uuid: str) -> dict[str, str]:
        """The current token's OAuth values (what depsim's ``GET /token`` gives)."""
        with self.lock:
            return self.server(server_uuid).token.payload()

    def revoke_token(self, server_uuid: str) -> None:
        """Revoke the server's current token: ``/session`` answers 401 ``token_rejected``."""
        with self.lock:
            self.server(server_uuid).token.state = "revoked"

    def delete_server(self, server_uuid: str) -> None:
        """Delete the MDM server in ABM: its token now gets 403 ``ACCESS_DENIED``."""
        with self.lock:
            self.server(server_uuid).deleted = True

    # -- devices ----------------------------------------------------------------------------

    def _holder(self, serial: str, skip: Server | None = None) -> Server | None:
        for server in self._ordinals:
            if server is not skip and server.current(serial) is not None:
                return server
        return None

    def add_devices(
        self,
        server_uuid: str,
        count: int = 0,
        devices: Iterable[Mapping[str, Any]] | None = None,
    ) -> list[str]:
        """Assign new devices to the server (sync ``added``): ``count`` generated ones, and/or
        ``devices`` given field by field (``serial_number`` optional). Returns their serials."""
        with self.lock:
            server = self.server(server_uuid)
            if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= 1_000_000:
                raise AdminError("count must be between 0 and 1000000.")
            now = int(self.now())
            records: list[dict[str, Any]] = []
            index = server.next_index
            for _ in range(count):
                record = server.catalog.record(index, server.catalog.encode(server.ordinal, index))
                record["device_assigned_date"] = format_time(now)
                records.append(record)
                index += 1
            seen: set[str] = set()
            for position, given in enumerate(devices or [], 1):
                records.append(self._given_device(server, given, position, index, now))
                index += 1
            for record in records:
                serial = record["serial_number"]
                if serial in seen or self._holder(serial) is not None:
                    raise AdminError(f"Device {serial} is already assigned to an MDM server.", 409)
                seen.add(serial)
            if not records:
                raise AdminError("Give a count or a list of devices to add.")
            server.next_index = index
            for record in records:
                server.add(record, "added", now)
            return [r["serial_number"] for r in records]

    def _given_device(
        self, server: Server, given: Mapping[str, Any], position: int, index: int, now: int
    ) -> dict[str, Any]:
        if not isinstance(given, Mapping):
            raise AdminError(f"Device {position} must be an object of device fields.")
        unknown = set(given) - {"serial_number", *_MODIFIABLE}
        if unknown:
            raise AdminError(
                f"Device {position} has fields a device cannot have: {sorted(unknown)}."
            )
        if not all(isinstance(v, str) for v in given.values()):
            raise AdminError(f"Device {position} fields must be strings.")
        serial = given.get("serial_number") or server.catalog.encode(server.ordinal, index)
        record = server.catalog.record(index, serial)
        record.update({k: v for k, v in given.items() if k != "serial_number"})
        record["device_assigned_date"] = format_time(now)
        return record

    def modify_devices(self, server_uuid: str, changes: Iterable[Mapping[str, Any]]) -> list[str]:
        """Change device fields (sync ``modified``); each change names its ``serial_number``.
        A field set to ``None`` is removed."""
        with self.lock:
            server = self.server(server_uuid)
            staged: list[tuple[str, dict[str, Any]]] = []
            for position, change in enumerate(changes, 1):
                if not isinstance(change, Mapping) or not isinstance(
                    change.get("serial_number"), str
                ):
                    raise AdminError(f"Change {position} must be an object with a serial_number.")
                serial = change["serial_number"]
                fields_ = {k: v for k, v in change.items() if k != "serial_number"}
                unknown = set(fields_) - set(_MODIFIABLE)
                if unknown:
                    raise AdminError(f"Change {position} cannot set {sorted(unknown)}.")
                if not all(v is None or isinstance(v, str) for v in fields_.values()):
                    raise AdminError(f"Change {position} values must be strings or null.")
                if not fields_:
                    raise AdminError(f"Change {position} changes nothing.")
                if server.current(serial) is None:
                    raise AdminError(f"Device {serial} is not assigned to this MDM server.", 404)
                staged.append((serial, fields_))
            if not staged:
                raise AdminError("Give at least one change.")
            now = int(self.now())
            for serial, fields_ in staged:
                server.modify(serial, fields_, now)
            return [serial for serial, _ in staged]

    def move_devices(
        self,
        serials: list[str],
        to_server: str,
        *,
        op_type: str = "added",
        from_server: str | None = None,
    ) -> list[str]:
        """Reassign devices to ``to_server`` as ABM does: ``deleted`` on the old server and
        ``added`` on the new one (or ``modified``, the quirk ABM sometimes shows)."""
        with self.lock:
            serials = _serial_list(serials)
            if op_type not in ("added", "modified"):
                raise AdminError("op_type must be added or modified.")
            target = self.server(to_server)
            if target.deleted:
                raise AdminError("Devices cannot move to a deleted MDM server.", 409)
            source = None if from_server is None else self.server(from_server)
            moves: list[tuple[Server, str]] = []
            for serial in serials:
                if source is not None:
                    holder = source if source.current(serial) is not None else None
                else:
                    holder = self._holder(serial, skip=target)
                if holder is None or holder is target:
                    raise AdminError(f"Device {serial} is not on a server it can move from.", 404)
                if target.current(serial) is not None:
                    raise AdminError(f"Device {serial} is already on the target server.", 409)
                moves.append((holder, serial))
            now = int(self.now())
            for holder, serial in moves:
                record = dict(holder.remove(serial, now))
                record["device_assigned_date"] = format_time(now)
                record["device_assigned_by"] = target.admin_id
                target.add(record, "added" if op_type == "added" else "modified", now)
            return [serial for _, serial in moves]

    def mark_pushed(self, server_uuid: str, serials: list[str]) -> list[str]:
        """The devices fetched their ADE profile: ``profile_status`` becomes ``pushed``."""
        with self.lock:
            server = self.server(server_uuid)
            serials = _serial_list(serials)
            for serial in serials:
                record = server.current(serial)
                if record is None:
                    raise AdminError(f"Device {serial} is not assigned to this MDM server.", 404)
                if record.get("profile_status") not in ("assigned", "pushed"):
                    raise AdminError(f"Device {serial} has no profile assigned to fetch.", 409)
            now = int(self.now())
            for serial in serials:
                server.modify(
                    serial, {"profile_status": "pushed", "profile_push_time": format_time(now)}, now
                )
            return serials

    def device(self, server_uuid: str, serial: str) -> dict[str, Any] | None:
        """The device's current record on the server, or ``None`` if it is not there."""
        with self.lock:
            record = self.server(server_uuid).current(serial)
            return None if record is None else dict(record)

    def devices(self, server_uuid: str, offset: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """Current devices in fetch order (the generated baseline first), for tests and admins."""
        with self.lock:
            server = self.server(server_uuid)
            found: list[dict[str, Any]] = []
            position, skipped = 0, 0
            end = server.roster_end(server.last_sequence)
            while position < end and len(found) < limit:
                record = _at_position(server, position)
                position += 1
                if record is None:
                    continue
                if skipped < offset:
                    skipped += 1
                    continue
                found.append(dict(record))
            return found

    def throttle_serials(self, server_uuid: str, serials: list[str], retry_after: int) -> None:
        """Assigning a profile to these serials answers ``THROTTLED`` for ``retry_after`` s."""
        with self.lock:
            server = self.server(server_uuid)
            serials = _serial_list(serials)
            if not isinstance(retry_after, int) or isinstance(retry_after, bool) or retry_after < 1:
                raise AdminError("retry_after_seconds must be a positive whole number.")
            until = self.now() + retry_after
            for serial in serials:
                server.throttled[serial] = until

    def fail_serials(self, server_uuid: str, serials: list[str], times: int = 1) -> None:
        """The next ``times`` profile assignments of these serials answer ``FAILED``."""
        with self.lock:
            server = self.server(server_uuid)
            serials = _serial_list(serials)
            if not isinstance(times, int) or isinstance(times, bool) or times < 1:
                raise AdminError("times must be a positive whole number.")
            for serial in serials:
                server.failures[serial] = times

    def expire_cursors(self, server_uuid: str, cursor: str | None = None) -> None:
        """Make one cursor, or every cursor issued so far, answer ``EXPIRED_CURSOR``."""
        with self.lock:
            server = self.server(server_uuid)
            if cursor is None:
                server.cursor_floor_ms = int(self.now() * 1000)
                return
            decoded = self.cursors.decode(cursor)
            if decoded is None or decoded.server != server.ordinal:
                raise AdminError("That is not a cursor of this MDM server.")
            server.expired_cursors.add(
                (decoded.kind, decoded.position, decoded.sequence, decoded.issued_ms)
            )

    def expire_sessions(self) -> None:
        """Forget every session, as a restart does: old session tokens get 403 ``FORBIDDEN``."""
        with self.lock:
            self.sessions.clear()

    # -- faults and settings ----------------------------------------------------------------

    def fault_plan(self, server_uuid: str | None = None) -> FaultPlan:
        with self.lock:
            return self.faults if server_uuid is None else self.server(server_uuid).faults

    def set_faults(
        self,
        server_uuid: str | None = None,
        *,
        scripts: Mapping[str, Any] | None = None,
        outage: Mapping[str, Any] | bool | None = False,
        throttle: Mapping[str, Any] | bool | None = False,
        delay_ms: int | None = None,
    ) -> None:
        """Set faults for the whole service (``server_uuid=None``) or one server.

        ``scripts`` maps endpoint names (or depsim keys) to scripts, replacing that endpoint's
        script; ``outage``/``throttle`` set a switch, ``None`` clears it, ``False`` (the default)
        leaves it; ``delay_ms`` slows every answer.
        """
        with self.lock:
            plan = self.fault_plan(server_uuid)
            staged_scripts = {}
            for name, entries in (scripts or {}).items():
                endpoint = resolve_endpoint(name)
                staged_scripts[endpoint] = parse_script(endpoint, entries)
            staged_outage = plan.outage if outage is False else _outage(outage)
            staged_throttle = plan.throttle if throttle is False else _throttle(throttle)
            if delay_ms is not None and (
                not isinstance(delay_ms, int)
                or isinstance(delay_ms, bool)
                or not 0 <= delay_ms <= 600_000
            ):
                raise AdminError("delay_ms must be between 0 and 600000.")
            for endpoint, script in staged_scripts.items():
                if script:
                    plan.scripts[endpoint] = deque(script)
                else:
                    plan.scripts.pop(endpoint, None)
            plan.outage, plan.throttle = staged_outage, staged_throttle
            if delay_ms is not None:
                plan.delay_ms = delay_ms

    def clear_faults(self, server_uuid: str | None = None) -> None:
        with self.lock:
            plan = self.fault_plan(server_uuid)
            plan.scripts.clear()
            plan.outage = plan.throttle = None
            plan.delay_ms = 0

    def configure(self, **changes: Any) -> None:
        """Change settings (``clock_offset_seconds=...``, ...); see :class:`Settings`."""
        with self.lock:
            self.settings.update(changes)

    # -- reading ----------------------------------------------------------------------------

    def describe_server(self, server: Server) -> dict[str, Any]:
        token = server.token
        return {
            "server_uuid": server.uuid,
            "server_name": server.name,
            "org_id": server.org.org_id,
            "admin_id": server.admin_id,
            "deleted": server.deleted,
            "device_count": server.present_count,
            "event_count": server.last_sequence,
            "profile_count": len(server.profiles),
            "has_certificate": server.certificate is not None,
            "token": {
                "state": token.state,
                "access_token_expiry": format_time(token.expiry),
                "issued": format_time(token.issued),
            },
            "faults": server.faults.describe(),
        }

    def describe(self) -> dict[str, Any]:
        """The whole simulated world as JSON-ready data (no secrets)."""
        with self.lock:
            return {
                "seed": self.seed,
                "default_devices": self.default_devices,
                "now": format_time(int(self.now())),
                "default_org_id": self.default_org.org_id,
                "orgs": [org.describe() for org in self.orgs.values()],
                "servers": [self.describe_server(s) for s in self._ordinals],
                "sessions": len(self.sessions),
                "settings": self.settings.describe(),
                "faults": self.faults.describe(),
                "requests": dict(self.requests),
            }


def _at_position(server: Server, position: int) -> dict[str, Any] | None:
    """The record at fetch ``position`` if that membership is current, else ``None``."""
    if position < server.baseline_count:
        serial = server.catalog.serial(position)
        entry = server.overlay.get(serial)
        if entry is None:
            return server.catalog.record(position, serial)
    else:
        serial = server.roster_extra[position - server.baseline_count]
        entry = server.overlay.get(serial)
        if entry is None:
            return None
    return entry.record if entry.present and entry.roster_pos == position else None


def _endpoint_set(value: Any) -> frozenset[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise AdminError("endpoints must be a non-empty list of endpoint names.")
    return frozenset(resolve_endpoint(v) for v in value)


def _outage(value: Mapping[str, Any] | bool | None) -> Outage | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise AdminError('outage must be an object like {"mode": "503"} or null.')
    mode = str(value.get("mode"))
    if mode not in ("500", "503", "drop"):
        raise AdminError("outage mode must be 500, 503 or drop.")
    return Outage(mode, _endpoint_set(value.get("endpoints")))  # type: ignore[arg-type]


def _throttle(value: Mapping[str, Any] | bool | None) -> Throttle | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise AdminError('throttle must be an object like {"status": 429, "retry_after": 30}.')
    status = value.get("status", 429)
    retry_after = value.get("retry_after")
    if status not in (429, 503):
        raise AdminError("throttle status must be 429 or 503.")
    if retry_after is not None and (
        not isinstance(retry_after, int) or isinstance(retry_after, bool) or retry_after < 0
    ):
        raise AdminError("throttle retry_after must be a whole number of seconds.")
    if status == 503 and retry_after is None:
        raise AdminError("A 503 throttle needs retry_after; a 503 without it is an outage.")
    return Throttle(status, retry_after, _endpoint_set(value.get("endpoints")))
