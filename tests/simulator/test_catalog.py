"""Generated devices: deterministic, unique, reversible serials; fast rendering equals records."""

from __future__ import annotations

import json
import random

import pytest

from adesync.simulator.catalog import HARDWARE, DeviceCatalog, format_time
from adesync.simulator.model import render_record

ANCHOR = 1_700_000_000


def test_serials_are_a_pure_function_of_seed_server_and_index() -> None:
    one = DeviceCatalog(5, 2, 1000, ANCHOR, "a@b.example")
    again = DeviceCatalog(5, 2, 1000, ANCHOR + 99, "x@y.example")
    other_seed = DeviceCatalog(6, 2, 1000, ANCHOR, "a@b.example")
    assert [one.serial(i) for i in range(50)] == [again.serial(i) for i in range(50)]
    assert one.serial(0) != other_seed.serial(0)
    serial = one.serial(7)
    assert len(serial) == 12 and serial.isalnum() and serial == serial.upper()


def test_serials_are_unique_across_servers_and_decode_back() -> None:
    catalogs = [DeviceCatalog(1, ordinal, 20_000, ANCHOR, "a@b.example") for ordinal in range(3)]
    serials = [c.serial(i) for c in catalogs for i in range(20_000)]
    assert len(set(serials)) == len(serials)
    assert catalogs[0].decode(catalogs[2].serial(1234)) == (2, 1234)
    assert catalogs[2].index_of(catalogs[2].serial(19_999)) == 19_999
    assert catalogs[0].index_of(catalogs[1].serial(5)) is None  # another server's device
    assert DeviceCatalog(1, 0, 10, ANCHOR, "a@b.example").index_of(catalogs[0].serial(10)) is None


def test_made_up_serials_are_not_recognised() -> None:
    catalog = DeviceCatalog(1, 0, 1_000_000, ANCHOR, "a@b.example")
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    rng = random.Random(4)
    made_up = ["".join(rng.choice(alphabet) for _ in range(12)) for _ in range(20_000)]
    assert sum(catalog.decode(s) is not None for s in made_up) == 0
    for bad in ("", "SHORT", "C02T0HL0GGC0", "ILLEGALCHARS", "0" * 13):
        assert catalog.decode(bad) is None


@pytest.mark.parametrize("version", [1, 2, 6, 7, 10])
def test_fast_rendering_equals_the_record(version: int) -> None:
    catalog = DeviceCatalog(3, 1, 5000, ANCHOR, 'quote"admin@b.example')
    fast = catalog.render_span(0, 200, version, set(), lambda index: None)
    for index, text in enumerate(fast):
        expected = render_record(catalog.record(index), version)
        assert json.loads(text) == expected
        assert json.loads(catalog.render(index, version)) == expected


def test_rendering_hands_changed_indices_to_the_caller() -> None:
    catalog = DeviceCatalog(3, 1, 10, ANCHOR, "a@b.example")
    out = catalog.render_span(0, 5, 10, {1, 3}, lambda i: "X" if i == 1 else None)
    assert len(out) == 4 and out[1] == "X"


def test_assignment_dates_are_chronological_and_in_the_past() -> None:
    catalog = DeviceCatalog(1, 0, 100_000, ANCHOR, "a@b.example")
    dates = [catalog.assigned_date(i) for i in range(0, 100_000, 97)]
    assert dates == sorted(dates)
    assert dates[0] >= ANCHOR - 3 * 365 * 86400 and dates[-1] <= ANCHOR
    kinds = {catalog.record(i)["device_family"] for i in range(500)}
    assert kinds == {hw.device_family for hw in HARDWARE}


def test_format_time_is_apples_timestamp() -> None:
    assert format_time(0) == "1970-01-01T00:00:00Z"
    assert format_time(1536427698) == "2018-09-08T17:28:18Z"
