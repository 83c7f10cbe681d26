"""SQLite connections whose statements run in a child process: the sync engine's page writes.

Python's ``sqlite3`` takes the GIL back for every row of an ``executemany``, so while aiosqlite's
thread writes a page of 1000 devices (about 30 µs a row, mostly inside SQLite), the event loop
thread that decodes the next page and the writer hand the GIL to each other a thousand times,
and the two barely run at once: a full fetch took the sum of both (about 60 µs a device, 15,000
devices/s) on two cores. A connection from here sends each statement to a child process
(:mod:`adesync.store.sqlite_child`, standard library only) that holds its own ``sqlite3``
connection and its own GIL, so the page is written while this process goes on; the transaction,
its ``BEGIN IMMEDIATE`` and the lease check in it stay exactly as on any other connection.

:class:`ApartConnection` is a :class:`~adesync.store.sqlite_driver.OneTripConnection` whose
trips go to the child instead of aiosqlite's thread (one pipe round trip per statement).
:class:`Database` opens such an engine, on a file database only, for ``Database.page_write()``.
If this process dies, the child sees its input end, rolls back and exits; if the child dies,
the statement in flight fails with ``OperationalError``.
"""

from __future__ import annotations

import asyncio
import pickle
import sqlite3
import sys
from pathlib import Path
from typing import Any

import aiosqlite
from sqlalchemy.util.concurrency import await_

from adesync.store.sqlite_child import LENGTH, frame
from adesync.store.sqlite_driver import OneTripConnection, OneTripDBAPI, Outcome

__all__ = ["ApartDBAPI", "ChildConnection", "apart_dbapi"]

_CHILD = Path(__file__).with_name("sqlite_child.py")
_CLOSED = "Cannot operate on a closed database. (The SQLite writer process ended.)"


class ChildConnection:
    """The parent's end of one child process (what aiosqlite's ``Connection`` is to
    OneTripConnection: it runs statements, commits, rolls back and closes)."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process
        self._lock = asyncio.Lock()
        # Truthy while open (SQLAlchemy's adapter checks it before commit and rollback).
        self._connection: bool = True
        self.isolation_level = None

    @classmethod
    async def open(cls, database: str, *, uri: bool = False) -> ChildConnection:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",
            "-S",
            str(_CHILD),
            database,
            *(["uri"] if uri else []),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        child = cls(process)
        await child._answer()  # the child has opened the database, or says why not
        return child

    async def _answer(self) -> Any:
        stdout = self._process.stdout
        assert stdout is not None
        try:
            (length,) = LENGTH.unpack(await stdout.readexactly(LENGTH.size))
            ok, value = pickle.loads(await stdout.readexactly(length))  # noqa: S301 (our child)
        except (asyncio.IncompleteReadError, ConnectionError) as error:
            raise self._ended() from error
        if ok:
            return value
        name, args, code, code_name = value
        error_type = getattr(sqlite3, name, sqlite3.DatabaseError)
        if not (isinstance(error_type, type) and issubclass(error_type, sqlite3.Error)):
            error_type = sqlite3.DatabaseError
        failure = error_type(*args)
        failure.sqlite_errorcode = code
        failure.sqlite_errorname = code_name
        raise failure

    def _ended(self) -> sqlite3.Error:
        """The error for a child that has gone: worded as sqlite3's own for a closed connection,
        which SQLAlchemy takes as a disconnect (the pool then opens a new child)."""
        self._connection = False
        return sqlite3.ProgrammingError(_CLOSED)

    async def _call(self, *request: Any) -> Any:
        if not self._connection:
            raise self._ended()
        stdin = self._process.stdin
        assert stdin is not None
        async with self._lock:
            try:
                stdin.write(frame(request))
                await stdin.drain()
            except ConnectionError as error:
                raise self._ended() from error
            return await self._answer()

    async def run(self, begin: str | None, operation: str, parameters: Any, many: bool) -> Outcome:
        if parameters is not None and not isinstance(parameters, list | tuple):
            parameters = list(parameters)
        outcome: Outcome = await self._call("run", begin, operation, parameters, many)
        return outcome

    async def commit(self) -> None:
        await self._call("commit")

    async def rollback(self) -> None:
        if self._connection:  # a child that has gone rolled back as it ended
            await self._call("rollback")

    async def close(self) -> None:
        if not self._connection:
            return
        self._connection = False
        stdin = self._process.stdin
        assert stdin is not None
        try:
            stdin.write(frame(("close",)))
            await stdin.drain()
            stdin.close()
        except ConnectionError:
            pass
        await self._process.wait()

    def stop(self) -> None:
        """End the child at once (SQLAlchemy's terminate outside a greenlet)."""
        self._connection = False
        if self._process.returncode is None:
            self._process.kill()


class ApartConnection(OneTripConnection):
    """A OneTripConnection whose statements run in a :class:`ChildConnection`."""

    __slots__ = ()

    @property
    def isolation_level(self) -> str | None:
        return None

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        """The child's connection is always in autocommit mode (BEGIN is sent explicitly)."""

    def cursor(self, server_side: bool = False) -> Any:
        if server_side:
            raise NotImplementedError("server-side cursors run in this process only")
        return super().cursor()

    async def _trip(
        self, begin: str | None, operation: str, parameters: Any, many: bool
    ) -> Outcome:
        child = self._connection
        assert isinstance(child, ChildConnection)
        return await child.run(begin, operation, parameters, many)

    def create_function(self, *args: Any, **kw: Any) -> None:
        """Skipped: SQLAlchemy registers Python functions for its ``regexp`` and ``floor``
        operators, which cannot run in the child and which page writes do not use (a statement
        that did would fail there with "no such function")."""


class ApartDBAPI(OneTripDBAPI):
    """The module SQLAlchemy sees: its connections are :class:`ApartConnection`s."""

    def connect(self, *arg: Any, **kw: Any) -> ApartConnection:
        database = str(kw.pop("database", arg[0] if arg else ""))
        uri = bool(kw.pop("uri", False))
        try:
            child = await_(ChildConnection.open(database, uri=uri))
        except Exception as error:
            ApartConnection._handle_exception_no_connection(self, error)
        return ApartConnection(self, child)


def apart_dbapi() -> ApartDBAPI:
    """The module to give ``create_async_engine(..., module=...)`` (values are bound in the
    child, which registers its own adapters)."""
    return ApartDBAPI(aiosqlite, sqlite3)
