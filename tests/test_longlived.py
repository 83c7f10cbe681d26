"""Freezing a process's start-up objects: kept out of collections, start-up garbage freed."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from adesync.longlived import freeze_startup_objects


class Node:
    """An object in a reference cycle: only a collection frees it."""

    def __init__(self) -> None:
        self.me = self


def cycle() -> weakref.ref[Node]:
    return weakref.ref(Node())


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_objects_alive_at_the_freeze_are_no_longer_collected() -> None:
    gc.collect()
    garbage_later = cycle()
    assert garbage_later() is not None  # a cycle no collection has seen yet
    freeze_startup_objects(collect=False)
    assert gc.get_freeze_count() > 0
    gc.collect()
    assert garbage_later() is not None, "a frozen object was collected"
    gc.unfreeze()
    gc.collect()
    assert garbage_later() is None


def test_the_freeze_collects_first_so_start_up_garbage_is_not_kept() -> None:
    garbage = cycle()
    freeze_startup_objects()
    assert garbage() is None
    assert gc.get_freeze_count() > 0


def test_objects_made_after_the_freeze_are_collected() -> None:
    freeze_startup_objects()
    later = cycle()
    gc.collect()
    assert later() is None
