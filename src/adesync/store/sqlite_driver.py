"""SQLite through aiosqlite with one trip to the driver's thread per statement.

aiosqlite runs each call on the connection in a thread of its own; SQLAlchemy's adapter makes
four such trips per statement (open a cursor, execute, fetch, close), and ``BEGIN`` and the
rollback at the end of a read are more trips: nine for a one-statement read. This adapter runs
a statement whole in one trip (cursor, execute, fetch all rows, close), sends the transaction's
``BEGIN`` along with its first statement, and skips ``ROLLBACK``/``COMMIT`` when no statement
went to the driver since the transaction ended (the pool's rollback after a session already
rolled back, a write that wrote nothing): two trips for a one-statement read.

Used by :class:`adesync.store.database.Database` for ``sqlite+aiosqlite`` URLs (built with
``module=dbapi()``); server-side cursors (``stream``) keep SQLAlchemy's own.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from typing import Any

import aiosqlite
from sqlalchemy.connectors.asyncio import AsyncAdapt_dbapi_cursor
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util.concurrency import await_

from adesync.store.sqlite_child import Outcome, bind_none_and_bool_directly
from adesync.store.sqlite_child import run as _run

__all__ = ["OneTripConnection", "Outcome", "bind_none_and_bool_directly", "dbapi"]


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A client-side cursor: ``execute`` leaves every row here, the rest never leaves the loop."""

    __slots__ = ("_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: OneTripConnection) -> None:
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._rows = deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> Any:
        return self._lastrowid

    @property
    def arraysize(self) -> int:
        return 1

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        pass

    def _keep(self, outcome: Outcome) -> None:
        self._description, rows, self._rowcount, self._lastrowid = outcome
        self._rows = deque(rows)

    def execute(self, operation: Any, parameters: Any = None) -> None:
        self._execute(operation, parameters, many=False)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> None:
        self._execute(operation, seq_of_parameters, many=True)

    def _execute(self, operation: Any, parameters: Any, *, many: bool) -> None:
        adapt = self._adapt_connection
        assert isinstance(adapt, OneTripConnection)
        try:
            self._keep(await_(adapt.run(operation, parameters, many=many)))
        except Exception as error:
            adapt._handle_exception(error)

    async def _async_soft_close(self) -> None:
        """Nothing to close: the driver's cursor was closed in the same trip."""

    def close(self) -> None:
        self._rows.clear()

    def nextset(self) -> None:
        self._rows.clear()

    def setinputsizes(self, *inputsizes: Any) -> None:
        pass


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    """The adapted connection: statements in one trip each, BEGIN sent with the first one."""

    __slots__ = ("_begin", "_touched")

    def __init__(self, dbapi: Any, connection: Any) -> None:
        super().__init__(dbapi, connection)
        # The BEGIN statement of a transaction no statement has run in yet.
        self._begin: str | None = None
        # Whether a statement went to the driver since the last COMMIT or ROLLBACK.
        self._touched = False

    def cursor(self, server_side: bool = False) -> AsyncAdapt_dbapi_cursor:
        if server_side:
            return super().cursor(server_side=True)
        return OneTripCursor(self)

    def defer_begin(self, statement: str) -> None:
        """Start a transaction with ``statement`` just before its first statement runs."""
        self._begin = statement

    async def run(self, operation: str, parameters: Any, *, many: bool) -> Outcome:
        begin, self._begin = self._begin, None
        self._touched = True
        return await self._trip(begin, operation, parameters, many)

    async def _trip(
        self, begin: str | None, operation: str, parameters: Any, many: bool
    ) -> Outcome:
        """One trip to the driver's thread (a subclass may send it elsewhere)."""
        driver = self._connection
        assert isinstance(driver, aiosqlite.Connection)
        outcome: Outcome = await driver._execute(
            _run, driver._conn, begin, operation, parameters, many
        )
        return outcome

    def _ended(self) -> bool:
        """Forget a pending BEGIN; True when the driver has no transaction to end."""
        self._begin = None
        if not self._touched:
            return True
        self._touched = False
        return False

    def rollback(self) -> None:
        if not self._ended():
            super().rollback()

    def commit(self) -> None:
        if not self._ended():
            super().commit()


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """aiosqlite as SQLAlchemy's dialect sees it, handing out :class:`OneTripConnection`."""

    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        adapted = super().connect(*arg, **kw)
        return OneTripConnection(self, adapted._connection)


def dbapi() -> OneTripDBAPI:
    """The module to give ``create_async_engine(..., module=...)`` for sqlite+aiosqlite."""
    bind_none_and_bool_directly()
    return OneTripDBAPI(aiosqlite, sqlite3)
