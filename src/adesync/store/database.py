"""The database handle: one async engine per process, read and write transactions.

SQLite runs in WAL mode with foreign keys on and a busy timeout, and write transactions start
with ``BEGIN IMMEDIATE`` so that several processes (``adesync sync`` beside ``adesync serve``)
queue for the write lock instead of failing when a deferred transaction tries to upgrade.
Through aiosqlite, statements go to the driver's thread in one trip each and ``BEGIN`` goes
with a transaction's first statement (:mod:`adesync.store.sqlite_driver`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any, cast

from sqlalchemy import event
from sqlalchemy.engine import Connection, CursorResult, Result, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from adesync.errors import AdesyncError, ConfigError

SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_CACHE_KIB = 65_536
SQLITE_CHECKPOINT_PAGES = 10_000  # about 40 MB of WAL between checkpoints
# Each request in flight in a serve worker holds a connection; those beyond the pool's size
# are opened for a burst and closed after it, each with a cold page cache and its PRAGMAs run
# again. bench/api.py (20 clients, 2 workers; the kernel may give one worker 13 or more of the
# 20 connections): 5 + 10 opened 25-36 per 500 requests, 12 + 4 still 32 in one worker over
# the run, 16 + 4 none after the first requests. Idle connections cost a thread, not memory.
SQLITE_POOL_SIZE = 16
SQLITE_POOL_OVERFLOW = 4
# The 64 MiB cache (for the sync writer) is per connection, so 20 of them could hold over 1 GiB
# of pages in a long-running serve worker. SQLite's soft heap limit (one per process) makes
# every cache reuse its own pages instead of growing once SQLite's memory reaches it: a sync
# process (a few connections) keeps its writer's 64 MiB, a serve worker's caches share about
# 256 MiB (8 connections each reading a 216 MB file whole: peak RSS 556 MB, 276 MB with it).
SQLITE_SOFT_HEAP_LIMIT = 256 * 1024 * 1024


def rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE touched."""
    return int(cast(CursorResult[Any], result).rowcount or 0)


class DatabaseUnavailable(AdesyncError):
    """The database cannot be reached or opened."""

    code = "database_unavailable"
    http_status = 503


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the driver, decide when transactions begin (see _sqlite_on_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # A page of 1000 devices touches pages all over the serial-number indexes: a larger cache
    # and fewer checkpoints (each copies the WAL back into the file) halve the cost of a
    # 200,000-device fetch. The cache is per connection and fills only as pages are read.
    cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_CHECKPOINT_PAGES}")
    cursor.execute(f"PRAGMA soft_heap_limit={SQLITE_SOFT_HEAP_LIMIT}")
    cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    immediate = conn.get_execution_options().get("sqlite_immediate", False)
    statement = "BEGIN IMMEDIATE" if immediate else "BEGIN"
    # sqlite_driver's connections send it along with the transaction's first statement.
    defer = getattr(conn.connection.dbapi_connection, "defer_begin", None)
    if defer is not None:
        defer(statement)
    else:
        conn.exec_driver_sql(statement)


def _listen_sqlite(engine: AsyncEngine) -> None:
    """Every connection with adesync's PRAGMAs; transactions begun as _sqlite_on_begin says."""
    event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
    event.listen(engine.sync_engine, "begin", _sqlite_on_begin)


class SharedReads:
    """The read session that one task's ``read()`` blocks share (``Database.shared_reads``)."""

    __slots__ = ("busy", "ended", "session", "task")

    def __init__(self, task: asyncio.Task[Any] | None) -> None:
        self.task = task
        self.session: AsyncSession | None = None
        # True while a read() block uses the session (a read() nested in it gets its own).
        self.busy = False
        # After end(), reads are the task's own again.
        self.ended = False

    async def release(self) -> None:
        """End the shared transaction unless a read uses it (its connection goes back to the
        pool; the next read begins afresh)."""
        if self.session is not None and not self.busy:
            await self.session.rollback()

    async def end(self) -> None:
        """End the shared transaction and give its connection back to the pool; later reads
        of the task each open their own."""
        self.ended = True
        session, self.session = self.session, None
        if session is not None:
            async with session:
                await session.rollback()


class Database:
    """An async engine plus session factories; ``read()`` and ``write()`` open transactions."""

    def __init__(self, url: str, *, pool_size: int = 5) -> None:
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise ConfigError("ADESYNC_DATABASE_URL is not a database URL.") from None
        self.url = parsed
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {}
        if self.dialect == "postgresql":
            kwargs.update(pool_size=pool_size, max_overflow=pool_size * 2, pool_pre_ping=True)
            # No JIT compilation: adesync's queries are short, and PostgreSQL's cost estimates
            # for a token whose first fetch just wrote 200,000 rows (no statistics yet) made it
            # compile a page's device look-up, 9 ms of 10 each time (an incremental sync took
            # 1.1 s instead of 0.7 s; diagnose is no slower without it). Options given in the
            # URL come first.
            options = " ".join(filter(None, [str(parsed.query.get("options") or ""), "-c jit=off"]))
            kwargs["connect_args"] = {"options": options}
        elif parsed.get_driver_name() == "aiosqlite":
            from adesync.store import sqlite_driver

            # One trip to aiosqlite's thread per statement instead of four.
            kwargs.update(
                module=sqlite_driver.dbapi(),
                pool_size=SQLITE_POOL_SIZE,
                max_overflow=SQLITE_POOL_OVERFLOW,
            )
        self.engine: AsyncEngine = create_async_engine(parsed, **kwargs)
        if self.dialect == "sqlite":
            _listen_sqlite(self.engine)
        self._write_engine = self.engine.execution_options(sqlite_immediate=True)
        self._read_sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write_sessions = async_sessionmaker(self._write_engine, expire_on_commit=False)
        # Opened by the first page_write() on SQLite.
        self._apart_engine: AsyncEngine | None = None
        self._page_sessions: async_sessionmaker[AsyncSession] | None = None
        self._shared: ContextVar[SharedReads | None] = ContextVar(
            f"adesync_shared_read_{id(self)}", default=None
        )

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def is_postgresql(self) -> bool:
        return self.dialect == "postgresql"

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reading; it is rolled back at the end (within ``shared_reads()``, at
        the end of that block instead)."""
        shared = self._shared.get()
        if (
            shared is not None
            and not shared.busy
            and not shared.ended
            and shared.task is asyncio.current_task()
        ):
            if shared.session is None:
                shared.session = self._read_sessions()
            shared.busy = True
            try:
                yield shared.session
            except BaseException:
                # The next read() starts a transaction afresh, as a read() of its own would.
                await shared.session.rollback()
                raise
            finally:
                shared.busy = False
            return
        async with self._read_sessions() as session:
            try:
                yield session
            finally:
                await session.rollback()

    @asynccontextmanager
    async def shared_reads(self) -> AsyncIterator[SharedReads]:
        """Within this block, the ``read()`` blocks of the current task share one session and
        one read transaction: one pooled connection, one ``BEGIN`` and one ``ROLLBACK`` for all
        of them, instead of one each (a console page reads the signed-in user, the alert
        banner and its own rows: on SQLite about 0.4 ms of CPU saved per read after the first).

        The reads see the database as of the first of them, except that a ``write()`` or
        ``page_write()`` of the same task ends that transaction when it starts (giving its
        connection back to the pool, so that many such tasks cannot hold every connection
        while each waits for one to write with) and again once it commits (so that a read
        after it sees what it wrote, as a read of its own would). Other tasks (those started
        in the block, too) read as usual. The transaction ends with the block, or earlier by
        the handle's ``end()`` (a web request's, once its answer is computed)."""
        shared = SharedReads(asyncio.current_task())
        token = self._shared.set(shared)
        try:
            yield shared
        finally:
            self._shared.reset(token)
            await shared.end()

    async def _end_shared_read(self) -> None:
        """Release the task's shared read transaction, if it has one (before and after a
        write)."""
        shared = self._shared.get()
        if shared is not None:
            await shared.release()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """One write transaction: committed when the block ends, rolled back if it raises."""
        await self._end_shared_read()
        async with self._write_sessions() as session, session.begin():
            yield session
        await self._end_shared_read()

    @asynccontextmanager
    async def page_write(self) -> AsyncIterator[AsyncSession]:
        """A write transaction for a page of devices. On SQLite its statements run in a
        child process (:mod:`adesync.store.sqlite_apart`), so that writing the page and this
        process's own work (decoding the next page) use two cores; otherwise as ``write()``."""
        # A SQLite file (Database takes no in-memory URL) can be written from a child process.
        if self.url.get_driver_name() != "aiosqlite":
            async with self.write() as session:
                yield session
            return
        if self._page_sessions is None:
            from adesync.store.sqlite_apart import apart_dbapi

            # One child: SQLite has one writer at a time anyway. Pinged at each page (one pipe
            # round trip), so that a child that died between pages is replaced before the page
            # instead of failing it.
            self._apart_engine = create_async_engine(
                self.url,
                module=apart_dbapi(),
                pool_size=1,
                max_overflow=0,
                pool_timeout=600,
                pool_pre_ping=True,
            )
            _listen_sqlite(self._apart_engine)
            self._page_sessions = async_sessionmaker(
                self._apart_engine.execution_options(sqlite_immediate=True),
                expire_on_commit=False,
            )
        await self._end_shared_read()
        async with self._page_sessions() as session, session.begin():
            yield session
        await self._end_shared_read()

    async def ping(self) -> None:
        """Raise DatabaseUnavailable unless the database answers."""
        from sqlalchemy import text

        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except (OperationalError, DBAPIError, OSError) as exc:
            raise DatabaseUnavailable(
                f"The database at {self.url.render_as_string(hide_password=True)} "
                f"cannot be reached ({type(exc.__cause__ or exc).__name__})."
            ) from exc

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._apart_engine is not None:
            await self._apart_engine.dispose()
