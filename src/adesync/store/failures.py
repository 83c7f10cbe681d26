"""What a database failure was, in the words of the ``sync_failing`` finding's detail.

A sync that ends on something other than Apple's answer records one of these in its run's
``error_detail`` and on the token: ``disk_full`` (SQLite's ``SQLITE_FULL``, PostgreSQL's
SQLSTATE ``53100``, ``ENOSPC``), ``database_unavailable`` (the database cannot be reached, dropped
the connection, a terminated backend, a dead SQLite page writer) or ``internal_error`` (anything
else: a defect)."""

from __future__ import annotations

import errno
import sqlite3

from sqlalchemy import exc as sa_exc

from adesync.store.database import DatabaseUnavailable

__all__ = ["DATABASE_UNAVAILABLE", "DISK_FULL", "INTERNAL_ERROR", "failure_detail"]

DATABASE_UNAVAILABLE = "database_unavailable"
DISK_FULL = "disk_full"
INTERNAL_ERROR = "internal_error"

_SQLITE_FULL = 13
_PG_DISK_FULL = "53100"
# PostgreSQL's classes of a server that cannot serve: insufficient resources, operator
# intervention (a terminated backend, a shutdown), system errors; and a connection that failed.
_PG_UNAVAILABLE_CLASSES = ("08", "53", "57", "58")


def _chain(error: BaseException) -> list[BaseException]:
    """``error``, the driver's error SQLAlchemy wraps, and their ``raise ... from`` causes."""
    seen: list[BaseException] = []
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop(0)
        if current is None or any(current is known for known in seen):
            continue
        seen.append(current)
        pending += [getattr(current, "orig", None), current.__cause__]
    return seen


def _disk_full(error: BaseException) -> bool:
    if isinstance(error, sqlite3.Error):
        code = getattr(error, "sqlite_errorcode", None)
        return code == _SQLITE_FULL or "database or disk is full" in str(error)
    if getattr(error, "sqlstate", None) == _PG_DISK_FULL:
        return True
    return isinstance(error, OSError) and error.errno == errno.ENOSPC


def _unavailable(error: BaseException) -> bool:
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(
        error,
        sa_exc.OperationalError | sa_exc.DisconnectionError | sa_exc.TimeoutError,
    ):
        return True
    if isinstance(error, DatabaseUnavailable | sqlite3.OperationalError | ConnectionError):
        return True
    if isinstance(error, sqlite3.ProgrammingError) and "closed database" in str(error):
        return True  # the SQLite page writer process ended (see store.sqlite_apart)
    sqlstate = getattr(error, "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate[:2] in _PG_UNAVAILABLE_CLASSES


def failure_detail(error: BaseException) -> str:
    """The detail code for a sync that ended on ``error`` (not an Apple error)."""
    chain = _chain(error)
    if any(_disk_full(link) for link in chain):
        return DISK_FULL
    if any(_unavailable(link) for link in chain):
        return DATABASE_UNAVAILABLE
    return INTERNAL_ERROR
