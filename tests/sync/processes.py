"""Real ``adesync`` processes for the sync tests: start, watch the database, kill."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from adesync.store.database import Database
from adesync.store.tables import tokens
from adesync.store.tables_sync import devices

__all__ = [
    "CliResult",
    "duplicate_rows",
    "lease_of",
    "run_cli",
    "start_cli",
    "wait_until",
]


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def cli_env(**settings: str) -> dict[str, str]:
    """This process's environment (the ``home`` fixture's ADESYNC_*) plus ``settings``."""
    return {**os.environ, **settings}


async def start_cli(*args: str, env: Mapping[str, str]) -> asyncio.subprocess.Process:
    """``adesync ARGS`` as a child process with its output piped."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "adesync.cli",
        *args,
        env=dict(env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def finish(process: asyncio.subprocess.Process, timeout: float = 120) -> CliResult:
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return CliResult(process.returncode, out.decode(), err.decode())


async def run_cli(*args: str, env: Mapping[str, str], timeout: float = 120) -> CliResult:
    return await finish(await start_cli(*args, env=env), timeout)


async def wait_until(
    check: Callable[[], Awaitable[Any]], what: str, timeout: float = 60, every: float = 0.02
) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(every)


async def duplicate_rows(db: Database) -> list[tuple[int, str, int]]:
    """(token_id, serial, count) of every serial stored more than once for a token."""
    count = func.count().label("n")
    async with db.read() as session:
        rows = await session.execute(
            select(devices.c.token_id, devices.c.serial_number, count)
            .group_by(devices.c.token_id, devices.c.serial_number)
            .having(count > 1)
        )
        return [(int(t), str(s), int(n)) for t, s, n in rows]


async def lease_of(db: Database, token_id: int) -> tuple[str | None, Any]:
    """(lease_owner, lease_expires_at) of a token."""
    async with db.read() as session:
        row = (
            await session.execute(
                select(tokens.c.lease_owner, tokens.c.lease_expires_at).where(
                    tokens.c.id == token_id
                )
            )
        ).one()
    return row.lease_owner, row.lease_expires_at
