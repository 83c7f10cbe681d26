"""Bulk writes and serial lookups shaped for pages of 1000 devices.

SQLAlchemy's per-row parameter processing costs more than the database's own work for a page
of devices, so a page goes to the driver directly: on SQLite one ``executemany`` of plain tuples
(timestamps already in SQLAlchemy's SQLite text format, so they compare and read back exactly as
rows SQLAlchemy wrote), on PostgreSQL one statement whose rows come from ``unnest`` of one
binary array per column.

Looking a page's devices up on PostgreSQL goes through a ``LATERAL`` probe of the serial
number index, one serial at a time: with ``token_id = ? AND serial_number IN (...)`` the
planner, which does not know yet how many rows a token has while its first full fetch runs,
reads every row of the token for every page (quadratic time).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Boolean, Integer, String, Table, Text
from sqlalchemy.ext.asyncio import AsyncSession

from adesync.store.database import Database
from adesync.store.tables_sync import devices
from adesync.store.types import UTCDateTime

__all__ = [
    "BulkWrite",
    "device_ids",
    "probe_devices",
    "sqlite_datetime",
    "string_length",
    "values_present",
]


def sqlite_datetime(value: datetime) -> str:
    """``value`` as SQLAlchemy stores a UTCDateTime on SQLite (naive UTC, microseconds)."""
    offset = value.utcoffset()
    if offset is None:
        raise ValueError("naive datetime given to a UTC column")
    if offset:
        value = value.astimezone(UTC)
    # "YYYY-MM-DD HH:MM:SS.ffffff" and the "+00:00" offset, which SQLite's text leaves out.
    return value.isoformat(" ", "microseconds")[:26]


def string_length(table: Table, name: str) -> int | None:
    """The length of ``table.name`` if it is a string column of limited length."""
    column_type = table.c[name].type
    if isinstance(column_type, String) and not isinstance(column_type, Text):
        return column_type.length
    return None


def _sqlite_mark(table: Table, name: str, *, clip: bool) -> str:
    length = string_length(table, name) if clip else None
    return "?" if length is None else f"substr(?, 1, {int(length)})"


def _pg_array_type(table: Table, name: str, *, clip: bool) -> str:
    column_type = table.c[name].type
    if isinstance(column_type, UTCDateTime):
        return "timestamptz[]"
    if isinstance(column_type, Boolean):
        return "boolean[]"
    if isinstance(column_type, Integer):
        return "bigint[]"
    if isinstance(column_type, String | Text):
        # An explicit cast to varchar(n) cuts longer strings instead of refusing them.
        length = string_length(table, name) if clip else None
        return "text[]" if length is None else f"varchar({int(length)})[]"
    raise TypeError(f"no array type for {table.name}.{name}")  # pragma: no cover


class BulkWrite:
    """``INSERT`` rows of ``columns`` into ``table``; with ``conflict`` (the unique columns),
    ``ON CONFLICT DO UPDATE`` of ``update`` columns, only ``where`` it holds (SQL over
    ``<table>`` and ``excluded``); ``set_sql`` names update columns set to an SQL expression
    (over the same two) instead of ``excluded.<column>``. Rows are sequences in ``columns``
    order holding what SQLAlchemy would accept for those columns (aware datetimes, bools,
    strings); rows that are lists may be changed in place. Strings longer than their column
    are cut to fit, in SQL (PostgreSQL refuses them; SQLite would keep them whole), except
    the ``conflict`` columns: a key is stored exactly or not at all. Without ``clip`` the
    caller has cut them (SQLite then binds values as they are: cutting in SQL cost a tenth of
    a device row's insert)."""

    def __init__(
        self,
        db: Database,
        table: Table,
        columns: Sequence[str],
        *,
        conflict: Sequence[str] = (),
        update: Sequence[str] = (),
        where: str | None = None,
        set_sql: Mapping[str, str] | None = None,
        clip: bool = True,
    ) -> None:
        self.is_postgresql = db.is_postgresql
        self.columns = tuple(columns)
        names = ", ".join(self.columns)
        tail = ""
        if conflict:
            expressions = {name: f"excluded.{name}" for name in update} | dict(set_sql or {})
            sets = ", ".join(f"{name} = {sql}" for name, sql in expressions.items())
            tail = f" ON CONFLICT ({', '.join(conflict)}) DO UPDATE SET {sets}"
            if where:
                tail += f" WHERE {where}"
        # Only names from the table definition go into the text; every value is bound.
        # PostgreSQL: each column's rows as one bound array, cast as the insert casts it.
        self.arrays = {
            n: f"%({n})b::{_pg_array_type(table, n, clip=n not in conflict)}" for n in self.columns
        }
        if self.is_postgresql:
            arrays = ", ".join(self.arrays.values())
            self.sql = f"INSERT INTO {table.name} ({names}) SELECT * FROM unnest({arrays}){tail}"  # noqa: S608
        else:
            marks = ", ".join(
                _sqlite_mark(table, n, clip=clip and n not in conflict) for n in self.columns
            )
            self.sql = f"INSERT INTO {table.name} ({names}) VALUES ({marks}){tail}"  # noqa: S608
        self._datetimes = tuple(
            i for i, name in enumerate(self.columns) if isinstance(table.c[name].type, UTCDateTime)
        )

    def stamp(self, value: datetime) -> Any:
        """A timestamp as the driver takes it, for rows given to ``execute(converted=True)``."""
        return value if self.is_postgresql else sqlite_datetime(value)

    async def execute(
        self, session: AsyncSession, rows: Sequence[Sequence[Any]], *, converted: bool = False
    ) -> None:
        """Write ``rows``; ``converted``: they are tuples whose timestamps already went through
        :meth:`stamp` (a caller building a thousand rows saves a second pass over them)."""
        if not rows:
            return
        connection = await session.connection()
        if self.is_postgresql:
            arrays = {name: [row[i] for row in rows] for i, name in enumerate(self.columns)}
            await connection.exec_driver_sql(self.sql, arrays)
        elif converted:
            await connection.exec_driver_sql(self.sql, list(rows))
        else:
            await connection.exec_driver_sql(self.sql, self._sqlite_rows(rows))

    async def execute_within(
        self,
        session: AsyncSession,
        rows: Sequence[Sequence[Any]],
        sql: str,
        params: Mapping[str, Any],
    ) -> list[tuple[Any, ...]]:
        """PostgreSQL only: run ``sql``, a statement that holds this write's ``sql`` (say as a
        ``WITH`` query) and may use its ``arrays``, with ``rows`` bound as :meth:`execute`
        binds them and ``params`` beside; returns its rows."""
        if not self.is_postgresql:
            raise TypeError("execute_within is for PostgreSQL")
        connection = await session.connection()
        arrays = {name: [row[i] for row in rows] for i, name in enumerate(self.columns)}
        return _tuples(await connection.exec_driver_sql(sql, {**arrays, **params}))

    def _sqlite_rows(self, rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
        # Many timestamps of a page are the same object (now, the fetch start): convert each
        # object once. (Keyed by identity: hashing an aware datetime costs more than that.)
        text: dict[int, str] = {}
        converted = []
        positions = self._datetimes
        for row in rows:
            values = row if isinstance(row, list) else list(row)
            for i in positions:
                value = values[i]
                if value is not None:
                    stored = text.get(id(value))
                    if stored is None:
                        stored = text[id(value)] = sqlite_datetime(value)
                    values[i] = stored
            converted.append(tuple(values))  # SQLAlchemy takes tuples, not lists
        return converted


async def probe_devices(
    session: AsyncSession, token_id: int, serials: Sequence[str], columns: Sequence[str]
) -> list[tuple[Any, ...]]:
    """``(serial_number, *columns)`` of this token's ``devices`` rows for ``serials`` (values as
    the driver returns them; see :func:`adesync.store.types.from_stored_datetime`)."""
    table = devices
    if not serials:
        return []
    connection = await session.connection()
    wanted = ", ".join(("serial_number", *columns))
    if connection.dialect.name == "postgresql":
        # The token is checked outside the probe (OFFSET 0 keeps it out): inside, the planner
        # could pick an index on token_id, thinking it selective, and read all of its rows.
        result = await connection.exec_driver_sql(
            f"SELECT p.serial_number{''.join(f', p.{c}' for c in columns)} "  # noqa: S608
            "FROM unnest(%(serials)b::text[]) AS s(serial) "
            f"CROSS JOIN LATERAL (SELECT token_id, {wanted} FROM {table.name} "
            "WHERE serial_number = s.serial OFFSET 0) AS p WHERE p.token_id = %(token_id)s",
            {"serials": list(serials), "token_id": token_id},
        )
        return _tuples(result)
    found: list[tuple[Any, ...]] = []
    for chunk, marks in _sqlite_in_lists(serials):
        result = await connection.exec_driver_sql(
            f"SELECT {wanted} FROM {table.name} WHERE token_id = ? "  # noqa: S608
            f"AND serial_number IN ({marks})",
            (token_id, *chunk),
        )
        found.extend(_tuples(result))
    return found


async def values_present(
    session: AsyncSession, table: Table, column: str, values: Sequence[str]
) -> list[str]:
    """Those of ``values`` that occur in ``table.column`` (an indexed text column), each once.

    Written for the driver directly: through SQLAlchemy's expanding ``IN`` a page of 1000
    serials costs milliseconds of statement building for what is usually an empty answer.
    """
    if not values:
        return []
    connection = await session.connection()
    name = table.c[column].name
    if connection.dialect.name == "postgresql":
        result = await connection.exec_driver_sql(
            f"SELECT DISTINCT {name} FROM {table.name} "  # noqa: S608
            f"WHERE {name} = ANY(%(values)b::text[])",
            {"values": list(values)},
        )
        return [value for (value,) in result]
    found: list[str] = []
    for chunk, marks in _sqlite_in_lists(values):
        result = await connection.exec_driver_sql(
            f"SELECT DISTINCT {name} FROM {table.name} WHERE {name} IN ({marks})",  # noqa: S608
            chunk,
        )
        found.extend(value for (value,) in result)
    return found


def _sqlite_in_lists(values: Sequence[Any]) -> Iterator[tuple[tuple[Any, ...], str]]:
    """``values`` in chunks that fit one SQLite statement (32766 parameters at most), each with
    its ``?, ?, ...`` placeholder list."""
    for start in range(0, len(values), 10_000):
        chunk = tuple(values[start : start + 10_000])
        yield chunk, ", ".join("?" * len(chunk))


async def device_ids(session: AsyncSession, token_id: int, serials: Sequence[str]) -> list[int]:
    """Row ids of this token's devices with these serials (to update them by primary key)."""
    return [int(row_id) for _, row_id in await probe_devices(session, token_id, serials, ("id",))]


def _tuples(result: Any) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in result]
