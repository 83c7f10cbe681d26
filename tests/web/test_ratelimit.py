"""Sign-in limiting in the database (both backends): slowed per name across addresses, never
locked out; refused per address."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import httpx

from adesync.store.database import Database
from adesync.store.tables_web import login_failures
from adesync.store.types import utcnow
from adesync.web.app import create_app
from adesync.web.ratelimit import LoginLimiter
from tests.web.live import PASSWORD, install_home, serving

ADDRESSES = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"]


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert match, "the page has no CSRF token"
    return match.group(1)


def recording() -> tuple[LoginLimiter, list[float]]:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    return LoginLimiter(sleep=sleep), waits


async def test_from_the_sixth_failure_a_name_waits_doubling_to_a_minute_from_any_address(
    db: Database,
) -> None:
    limiter, waits = recording()
    for attempt in range(12):
        assert await limiter.admit(db, ADDRESSES[attempt % 4], "Alice") == 0
    assert waits == [2, 4, 8, 16, 32, 60, 60]
    # Another name from the same addresses is not slowed.
    assert await limiter.admit(db, ADDRESSES[0], "bob") == 0
    assert waits == [2, 4, 8, 16, 32, 60, 60]


async def test_an_address_with_fifty_failures_is_refused_and_no_other(db: Database) -> None:
    limiter, _ = recording()
    for i in range(50):
        assert await limiter.admit(db, "192.0.2.7", f"nobody{i}") == 0
    retry = await limiter.admit(db, "192.0.2.7", "alice")
    assert 890 <= retry <= 900
    assert await limiter.admit(db, "192.0.2.8", "alice") == 0


async def test_a_success_forgets_the_names_failures_from_that_address(db: Database) -> None:
    limiter, waits = recording()
    for _ in range(2):
        await limiter.admit(db, "10.0.0.1", "alice")
        await limiter.admit(db, "10.0.0.2", "alice")
    await limiter.succeeded(db, "10.0.0.1", "ALICE")  # the last attempt from there was right
    for _ in range(3):
        await limiter.admit(db, "10.0.0.1", "alice")
    assert waits == []  # 2 from 10.0.0.2 and 3 from 10.0.0.1 count
    await limiter.admit(db, "10.0.0.1", "alice")
    assert waits == [2]


async def test_failures_older_than_the_window_count_no_more(db: Database) -> None:
    limiter, waits = recording()
    old = utcnow() - timedelta(minutes=16)
    async with db.write() as session:
        for address in ADDRESSES * 3:
            await session.execute(
                login_failures.insert().values(name="alice", address=address, at=old)
            )
    await limiter.admit(db, "10.0.0.1", "alice")
    assert waits == []
    async with db.read() as session:
        assert len((await session.execute(login_failures.select())).all()) == 1


def test_guessing_one_name_from_four_addresses_is_slowed_and_locks_out_no_one(
    tmp_path: Path,
) -> None:
    """Through a real server that trusts the test client as its proxy: the client sends each
    guess from another address (X-Forwarded-For)."""
    installation = install_home(tmp_path / "home", forwarded_allow_ips="127.0.0.1")
    app = create_app(installation.settings)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    def sign_in(client: httpx.Client, name: str, password: str, address: str) -> int:
        token = csrf_of(client.get("/login").text)
        answer = client.post(
            "/login",
            data={"username": name, "password": password, "csrf_token": token},
            headers={"X-Forwarded-For": address},
        )
        return answer.status_code

    with (
        serving(app, installation.settings) as url,
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        app.state.web.limiter.sleep = sleep
        codes = [sign_in(client, "admin", f"guess{i}", ADDRESSES[i % 4]) for i in range(8)]
        assert codes == [401] * 8 and waits == [2, 4, 8]
        # Another user from the same addresses signs in at once.
        with httpx.Client(base_url=url, timeout=60) as other:
            assert sign_in(other, "bob", PASSWORD, ADDRESSES[0]) == 303
        assert waits == [2, 4, 8]
        # The admin, slowed, still signs in.
        assert sign_in(client, "admin", PASSWORD, ADDRESSES[1]) == 303
        assert waits == [2, 4, 8, 16]
        # Too many failures from one address refuse that address only (12 here, to keep the test
        # short: the 50 of the default is proved above, on both backends).
        app.state.web.limiter.per_address = 12
        for i in range(10):
            assert sign_in(client, f"nobody{i}", "x", ADDRESSES[2]) == 401
        assert sign_in(client, "bob", PASSWORD, ADDRESSES[2]) == 429
        with httpx.Client(base_url=url, timeout=60) as other:
            assert sign_in(other, "bob", PASSWORD, "10.0.0.5") == 303
