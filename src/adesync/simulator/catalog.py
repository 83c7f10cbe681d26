"""Deterministic device generation: device ``i`` of server ``s`` is a pure function of its inputs.

A simulated server with a million devices keeps none of them in memory. Serial numbers are a
keyed permutation of ``(server ordinal, index, check bits)``, so a serial maps back to the
device it names without any lookup table, and a made-up serial is recognised as foreign.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MAX_SERVERS",
    "DeviceCatalog",
    "Hardware",
    "format_time",
]

# Serial alphabet: Crockford-style base32 (no I, L, O, U), 5 bits per character, so 12
# characters hold exactly the 60-bit permuted value.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]
_PAIR_INDEX = {pair: i for i, pair in enumerate(_PAIRS)}
_MASK32 = (1 << 32) - 1
_MASK60 = (1 << 60) - 1
_MASK64 = (1 << 64) - 1
_INDEX_BITS = 32
_SERVER_BITS = 12
MAX_SERVERS = 1 << _SERVER_BITS
MAX_INDEX = 1 << _INDEX_BITS


def _mix64(value: int) -> int:
    """splitmix64 finaliser: a well-spread 64-bit hash, used only to derive keys from a seed."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)


_DAYS: dict[int, str] = {}
_HOURS = [f"{h:02d}:" for h in range(24)]
_MINUTES_SECONDS = [f"{m:02d}:{s:02d}Z" for m in range(60) for s in range(60)]


def format_time(epoch: int) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` (UTC, second precision), as Apple writes device timestamps."""
    day, seconds = divmod(int(epoch), 86400)
    prefix = _DAYS.get(day)
    if prefix is None:
        if len(_DAYS) > 50_000:  # bounded: a page touches a handful of days
            _DAYS.clear()
        prefix = _DAYS[day] = time.strftime("%Y-%m-%dT", time.gmtime(day * 86400))
    hours, rest = divmod(seconds, 3600)
    return prefix + _HOURS[hours] + _MINUTES_SECONDS[rest]


@dataclass(frozen=True, slots=True)
class Hardware:
    """One kind of device a generated serial can be: Apple's model, description and colour."""

    device_family: str
    model: str
    description: str
    color: str
    os: str


def _hardware() -> tuple[Hardware, ...]:
    kinds: list[Hardware] = []

    def add(family: str, os_name: str, model: str, description: str, colors: list[str]) -> None:
        for color in colors:
            kinds.append(Hardware(family, model, description.format(color=color), color, os_name))

    # Weights come from repetition: phones and Macs dominate a typical fleet.
    for _ in range(4):
        add("iPhone", "iOS", "iPhone 15", "IPHONE 15 {color} 128GB-USA", ["BLACK", "BLUE", "PINK"])
        add("iPhone", "iOS", "iPhone 14", "IPHONE 14 {color} 128GB-USA", ["MIDNIGHT", "STARLIGHT"])
    for _ in range(3):
        add(
            "Mac",
            "OSX",
            "MacBook Pro",
            "MBP 14.2 {color}/M3 PRO/18GB/512GB-USA",
            ["SPACE BLACK", "SILVER"],
        )
        add(
            "Mac",
            "OSX",
            "MacBook Air",
            "MBA 13.6 {color}/M2/8GB/256GB-USA",
            ["MIDNIGHT", "STARLIGHT", "SPACE GRAY"],
        )
    for _ in range(2):
        add("iPad", "iPadOS", "iPad Air", "IPAD AIR 11 WI-FI 128GB {color}-USA", ["BLUE", "PURPLE"])
        add("iPad", "iPadOS", "iPad", "IPAD 10.9 WI-FI 64GB {color}-USA", ["SILVER", "YELLOW"])
    add("AppleTV", "tvOS", "Apple TV 4K", "APPLE TV 4K WI-FI + ETHERNET 128GB", ["BLACK"])
    add("Vision", "visionOS", "Apple Vision Pro", "APPLE VISION PRO 256GB", ["SILVER"])
    return tuple(kinds)


HARDWARE = _hardware()
_KINDS = len(HARDWARE)


def _fragment(hw: Hardware, version: int) -> str:
    """The JSON members of a generated device that depend only on its hardware kind."""
    parts = [
        f',"model":{json.dumps(hw.model)}',
        f',"description":{json.dumps(hw.description)}',
        f',"color":{json.dumps(hw.color)}',
    ]
    if version >= 2:
        os_name = hw.os if (version >= 7 or hw.os != "iPadOS") else "iOS"
        parts.append(f',"os":{json.dumps(os_name)},"device_family":{json.dumps(hw.device_family)}')
    return "".join(parts)


# Protocol-version bands that change how a generated device renders (see reference §3.1).
_BANDS = (1, 2, 7)
_FRAGMENTS = {band: tuple(_fragment(hw, band) for hw in HARDWARE) for band in _BANDS}


def _band(version: int) -> int:
    if version >= 7:
        return 7
    if version >= 2:
        return 2
    return 1


class DeviceCatalog:
    """The generated baseline devices of one simulated MDM server.

    ``serial(i)``, ``record(i)`` and ``render(i, version)`` depend only on the seed, the server
    ordinal, ``i``, the baseline size and the anchor time given here, never on state.
    """

    __slots__ = (
        "_add_b",
        "_admin_json",
        "_attr_key",
        "_check_key",
        "_mul_a",
        "_mul_a_inverse",
        "_mul_c",
        "_mul_c_inverse",
        "admin_id",
        "anchor",
        "count",
        "ordinal",
        "span",
    )

    def __init__(self, seed: int, ordinal: int, count: int, anchor: int, admin_id: str) -> None:
        if not 0 <= ordinal < MAX_SERVERS:
            raise ValueError(f"server ordinal {ordinal} is out of range")
        if not 0 <= count <= MAX_INDEX:
            raise ValueError(f"device count {count} is out of range")
        self.ordinal = ordinal
        self.count = count
        self.anchor = anchor
        self.admin_id = admin_id
        self._admin_json = json.dumps(admin_id)
        base = _mix64(seed & _MASK64)
        # The permutation keys are the same for every server of a simulator, so serials of
        # two servers never collide (the ordinal is inside the permuted value). Multiplying by
        # an odd number and xor-shifting are both bijections modulo 2**60, hence invertible.
        self._mul_a = (_mix64(base + 1) & _MASK60) | 1
        self._add_b = _mix64(base + 2) & _MASK60
        self._mul_c = (_mix64(base + 3) & _MASK60) | 1
        self._mul_a_inverse = pow(self._mul_a, -1, 1 << 60)
        self._mul_c_inverse = pow(self._mul_c, -1, 1 << 60)
        self._check_key = _mix64(base + 4) | 1
        self._attr_key = _mix64(base ^ ((ordinal + 1) * 0xA5A5A5A5)) | 1
        # Baseline devices were assigned over up to three years before the anchor, oldest
        # first (Apple lists fetched devices in chronological order).
        self.span = min(3 * 365 * 86400, max(count, 1) * 3600)

    # -- serial numbers ---------------------------------------------------------------------

    def serial(self, index: int) -> str:
        """The serial number of baseline device ``index`` (12 characters, uppercase)."""
        return self.encode(self.ordinal, index)

    def encode(self, ordinal: int, index: int) -> str:
        """The generated serial of device ``index`` of the server numbered ``ordinal``."""
        value = (ordinal << _INDEX_BITS) | index
        check = ((value * self._check_key) & _MASK64) >> 48
        x = (((check << 44) | value) * self._mul_a + self._add_b) & _MASK60
        x ^= x >> 31
        x = (x * self._mul_c) & _MASK60
        pairs = _PAIRS
        return (
            pairs[x >> 50]
            + pairs[(x >> 40) & 1023]
            + pairs[(x >> 30) & 1023]
            + pairs[(x >> 20) & 1023]
            + pairs[(x >> 10) & 1023]
            + pairs[x & 1023]
        )

    def decode(self, serial: str) -> tuple[int, int] | None:
        """``(server ordinal, index)`` of a generated serial, or ``None`` for any other string."""
        if len(serial) != 12:
            return None
        x = 0
        try:
            for start in range(0, 12, 2):
                x = (x << 10) | _PAIR_INDEX[serial[start : start + 2]]
        except KeyError:
            return None
        x = (x * self._mul_c_inverse) & _MASK60
        x ^= x >> 31
        x = ((x - self._add_b) * self._mul_a_inverse) & _MASK60
        value = x & ((1 << 44) - 1)
        if x >> 44 != ((value * self._check_key) & _MASK64) >> 48:
            return None
        return value >> _INDEX_BITS, value & (MAX_INDEX - 1)

    def index_of(self, serial: str) -> int | None:
        """The baseline index of ``serial`` on this server, or ``None`` if it is not one."""
        decoded = self.decode(serial)
        if decoded is None or decoded[0] != self.ordinal or decoded[1] >= self.count:
            return None
        return decoded[1]

    # -- attributes -------------------------------------------------------------------------

    def _attributes(self, index: int) -> tuple[int, int]:
        """(hardware kind, assignment time) of baseline device ``index``."""
        mixed = ((index + 1) * self._attr_key) & _MASK64
        count = self.count or 1
        step = self.span // count or 1
        assigned = self.anchor - self.span + (index * self.span) // count + (mixed & _MASK32) % step
        return (mixed >> 40) % _KINDS, assigned

    def assigned_date(self, index: int) -> int:
        """When baseline device ``index`` was assigned to this server (epoch seconds)."""
        return self._attributes(index)[1]

    def record(self, index: int, serial: str | None = None) -> dict[str, Any]:
        """The full device record (every field, newest protocol) as a plain dict."""
        kind, assigned = self._attributes(index)
        hw = HARDWARE[kind]
        return {
            "serial_number": serial or self.serial(index),
            "model": hw.model,
            "description": hw.description,
            "color": hw.color,
            "os": hw.os,
            "device_family": hw.device_family,
            "profile_status": "empty",
            "device_assigned_date": format_time(assigned),
            "device_assigned_by": self.admin_id,
        }

    def render(self, index: int, version: int, serial: str | None = None) -> str:
        """Baseline device ``index`` as a JSON object for ``X-Server-Protocol-Version`` ``version``.

        Equal, once parsed, to ``record`` filtered for that version; built from pre-rendered
        pieces because a 1000-device page must cost a few milliseconds.
        """
        kind, assigned = self._attributes(index)
        return _TEMPLATE % (
            serial or self.serial(index),
            _FRAGMENTS[_band(version)][kind],
            format_time(assigned),
            self._admin_json,
        )

    def render_span(
        self,
        start: int,
        stop: int,
        version: int,
        changed: Collection[int],
        special: Callable[[int], str | None],
    ) -> list[str]:
        """Baseline positions ``start..stop`` rendered for a fetch page, in order.

        An index in ``changed`` (the device differs from its baseline) is handed to
        ``special(index)``, which renders it or returns ``None`` to leave it out. Otherwise equal
        to ``render`` position by position; inlined because this loop is the hot path.
        """
        out: list[str] = []
        append = out.append
        pairs, fragments = _PAIRS, _FRAGMENTS[_band(version)]
        days, hours, minutes_seconds = _DAYS, _HOURS, _MINUTES_SECONDS
        template, admin = _SPAN_TEMPLATE, self._admin_json
        high = self.ordinal << _INDEX_BITS
        check_key, mul_a, add_b, mul_c = self._check_key, self._mul_a, self._add_b, self._mul_c
        attr_key, anchor, span = self._attr_key, self.anchor, self.span
        count = self.count or 1
        step = span // count or 1
        for index in range(start, stop):
            if changed and index in changed:
                rendered = special(index)
                if rendered is not None:
                    append(rendered)
                continue
            value = high | index
            x = (((((value * check_key) & _MASK64) >> 48) << 44 | value) * mul_a + add_b) & _MASK60
            x ^= x >> 31
            x = (x * mul_c) & _MASK60
            mixed = ((index + 1) * attr_key) & _MASK64
            assigned = anchor - span + (index * span) // count + (mixed & _MASK32) % step
            day, seconds = divmod(assigned, 86400)
            prefix = days.get(day)
            if prefix is None:
                prefix = format_time(day * 86400)[:11]
            hour, rest = divmod(seconds, 3600)
            append(
                template
                % (
                    pairs[x >> 50],
                    pairs[(x >> 40) & 1023],
                    pairs[(x >> 30) & 1023],
                    pairs[(x >> 20) & 1023],
                    pairs[(x >> 10) & 1023],
                    pairs[x & 1023],
                    fragments[(mixed >> 40) % _KINDS],
                    prefix,
                    hours[hour],
                    minutes_seconds[rest],
                    admin,
                )
            )
        return out


_TEMPLATE = (
    '{"serial_number":"%s"%s,"profile_status":"empty","device_assigned_date":"%s",'
    '"device_assigned_by":%s}'
)
_SPAN_TEMPLATE = (
    '{"serial_number":"%s%s%s%s%s%s"%s,"profile_status":"empty",'
    '"device_assigned_date":"%s%s%s","device_assigned_by":%s}'
)
