"""The child process of :mod:`adesync.store.sqlite_apart`: one sqlite3 connection that runs the
statements its parent sends.

Run as a script (``python -I -S sqlite_child.py DATABASE [uri]``), not as a module of the
package, so that it starts in a few milliseconds and imports nothing but the standard library.
(The package imports it too: :mod:`adesync.store.sqlite_driver` runs the same ``run`` in
aiosqlite's thread and registers the same adapters.)
It reads frames from standard input and answers each on standard output; a frame is a 4-byte
big-endian length and a pickle. Requests: ``("run", begin, operation, parameters, many)``,
``("commit",)``, ``("rollback",)``, ``("close",)``. Answers: ``(True, result)`` or
``(False, (exception class name, args, sqlite_errorcode, sqlite_errorname))``.

When standard input ends (the parent exited or was killed) the child rolls back whatever
transaction is open and exits: a write the parent did not commit is never committed. It ignores
SIGINT and SIGTERM (its parent handles them, and may need it to finish the page in hand).
"""

from __future__ import annotations

import pickle
import signal
import sqlite3
import struct
import sys
from typing import Any, BinaryIO

LENGTH = struct.Struct(">I")

# What running a statement gives: description, all rows, rowcount, lastrowid.
Outcome = tuple[Any, list[Any], int, int | None]


def bind_none_and_bool_directly() -> None:
    """Spare the ``sqlite3`` module its adaptation search for ``None`` and ``bool`` values.

    Python's ``sqlite3`` binds ``int``, ``float`` and ``str`` values as they are, but sends any
    other value (``None`` and ``bool`` included) through its adapter registry first; when the
    registry has no entry, it asks its protocol class for ``__adapt__``, and the failed look-up
    formats an AttributeError message that is thrown away. For a device row with ten NULLs
    that was a fifth of a plain insert's CPU (15 µs a row; 12 µs with these entries). With an
    entry for each type the search ends at the registry: ``{}.get`` answers ``None`` to
    anything, ``int`` turns a bool into the 0 or 1 SQLite stores anyway. Registering these
    does not mark a base type as adapted (which would send every ``str`` and ``int`` through
    the registry) and changes no value that reaches the database. Process-wide, idempotent."""
    sqlite3.register_adapter(type(None), {}.get)  # type: ignore[arg-type]
    sqlite3.register_adapter(bool, int)


def read_frame(stream: BinaryIO) -> Any:
    """The next request, or None at the end of the input."""
    head = stream.read(LENGTH.size)
    if len(head) < LENGTH.size:
        return None
    (length,) = LENGTH.unpack(head)
    body = stream.read(length)
    if len(body) < length:
        return None
    return pickle.loads(body)  # noqa: S301 (frames come from the parent process only)


def frame(value: Any) -> bytes:
    """``value`` as one frame: its pickle's length, then the pickle."""
    body = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return LENGTH.pack(len(body)) + body


def write_frame(stream: BinaryIO, value: Any) -> None:
    stream.write(frame(value))
    stream.flush()


def run(
    conn: sqlite3.Connection, begin: str | None, operation: str, parameters: Any, many: bool
) -> Outcome:
    """The pending BEGIN, then the statement and all its rows: one trip of
    :mod:`adesync.store.sqlite_driver` (in aiosqlite's thread, or in this process)."""
    if begin is not None:
        conn.execute(begin)
    cursor = conn.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description is not None else []
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


def _failure(error: sqlite3.Error) -> tuple[bool, tuple[str, Any, Any, Any]]:
    """The answer that re-raises ``error`` in the parent (its class, arguments and codes)."""
    code = getattr(error, "sqlite_errorcode", None)
    return False, (type(error).__name__, error.args, code, getattr(error, "sqlite_errorname", None))


def serve(conn: sqlite3.Connection, requests: BinaryIO, answers: BinaryIO) -> None:
    while True:
        request = read_frame(requests)
        if request is None or request[0] == "close":
            break
        kind = request[0]
        try:
            if kind == "run":
                result: Any = run(conn, *request[1:])
            elif kind == "commit":
                conn.commit()  # ends the transaction the BEGIN of a "run" opened, if any
                result = None
            elif kind == "rollback":
                conn.rollback()
                result = None
            else:
                raise sqlite3.ProgrammingError(f"unknown request {kind!r}")
        except sqlite3.Error as error:
            write_frame(answers, _failure(error))
            continue
        write_frame(answers, (True, result))
    conn.rollback()
    conn.close()


def main() -> None:
    # Ctrl-C reaches the whole process group, and a service manager may send SIGTERM to every
    # process of the service: the parent stops on them and records its run, which needs this
    # child until it is done with it. The child ends with its parent (its input closes).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    database = sys.argv[1]
    uri = len(sys.argv) > 2 and sys.argv[2] == "uri"
    requests, answers = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but frames on the answer stream
    bind_none_and_bool_directly()
    try:
        conn = sqlite3.connect(database, uri=uri, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as error:
        write_frame(answers, _failure(error))
        return
    write_frame(answers, (True, sqlite3.sqlite_version))
    serve(conn, requests, answers)


if __name__ == "__main__":
    main()
