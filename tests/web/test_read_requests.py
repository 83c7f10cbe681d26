"""ReadRequests: GET and HEAD requests take turns (at most N computed at once, first come first
served), share one read transaction, and give back both their turn and their connection as
soon as their answer starts; other methods, /static and /healthz are not held back."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select

from adesync.store.database import Database
from adesync.web.app import ReadRequests

Message = dict[str, Any]


def _scope(db: Database, method: str = "GET", path: str = "/tokens") -> dict[str, Any]:
    app = SimpleNamespace(state=SimpleNamespace(web=SimpleNamespace(db=db)))
    return {"type": "http", "method": method, "path": path, "app": app}


async def _receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _call(app: ReadRequests, scope: dict[str, Any]) -> list[Message]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, _receive, send)
    return sent


async def test_at_most_n_read_requests_are_computed_at_once(db: Database) -> None:
    running = 0
    most = 0

    async def page(scope: Any, receive: Any, send: Any) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        async with db.read() as session:
            await session.execute(select(1))
        await asyncio.sleep(0.02)
        running -= 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    limited = ReadRequests(page, at_once=2)
    answers = await asyncio.gather(*(_call(limited, _scope(db)) for _ in range(6)))
    assert most == 2
    assert all(sent[0]["status"] == 200 for sent in answers)
    most = 0
    for method, path in (("POST", "/tokens"), ("GET", "/static/app.css"), ("GET", "/healthz")):
        await asyncio.gather(*(_call(limited, _scope(db, method, path)) for _ in range(4)))
        assert most == 4, (method, path)
        most = 0


async def test_the_turn_and_the_connection_go_back_when_the_answer_starts(db: Database) -> None:
    pool = db.engine.sync_engine.pool
    started = asyncio.Event()
    finish = asyncio.Event()
    checked_out: list[int] = []

    async def slow_reader(scope: Any, receive: Any, send: Any) -> None:
        async with db.read() as session:
            await session.execute(select(1))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        started.set()
        await finish.wait()  # the client reads the body slowly
        await send({"type": "http.response.body", "body": b"long"})

    async def quick(scope: Any, receive: Any, send: Any) -> None:
        checked_out.append(pool.checkedout())  # type: ignore[attr-defined]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def pages(scope: Any, receive: Any, send: Any) -> None:
        await (slow_reader if scope["path"] == "/slow" else quick)(scope, receive, send)

    one_at_a_time = ReadRequests(pages, at_once=1)
    slow = asyncio.create_task(_call(one_at_a_time, _scope(db, path="/slow")))
    await started.wait()
    # The slow answer has started: its turn is free again, so this request is not held back,
    # and its connection is back in the pool.
    await asyncio.wait_for(_call(one_at_a_time, _scope(db, path="/quick")), timeout=5)
    assert checked_out == [0]
    finish.set()
    assert (await slow)[-1]["body"] == b"long"
