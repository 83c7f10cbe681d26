"""/metrics: a viewer API key on the console port by default, open with
ADESYNC_METRICS_AUTH=none, and apart without authentication with ``serve --metrics-port``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from adesync.config import Settings
from adesync.store.database import Database
from adesync.store.keycheck import adopt_key
from adesync.store.secrets import SecretBox
from adesync.web.app import create_app
from adesync.web.roles import Role
from tests.cli_runner import invoke
from tests.conftest import Home
from tests.web.conftest import Web
from tests.web.live import install_home


async def test_metrics_need_a_viewer_key(web: Web) -> None:
    missing = await web.client.get("/metrics")
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert missing.json()["code"] == "unauthorized" and "adesync_" not in missing.text
    wrong = await web.client.get("/metrics", headers={"Authorization": "Bearer ades_nope"})
    assert wrong.status_code == 401
    ingest = await web.client.get("/metrics", headers=web.as_role(Role.INGEST))
    assert ingest.status_code == 403
    for role in (Role.VIEWER, Role.ADMIN):
        answer = await web.client.get("/metrics", headers=web.as_role(role))
        assert answer.status_code == 200 and "adesync_sync_runs_total" in answer.text


async def test_metrics_auth_none_opens_them(db: Database, box: SecretBox, tmp_path: Path) -> None:
    await adopt_key(db, box)
    app = create_app(Settings(home=tmp_path, metrics_auth="none"), db=db, box=box)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        answer = await client.get("/metrics")
    assert answer.status_code == 200 and "adesync_sync_runs_total" in answer.text


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(url: str, deadline: float) -> httpx.Response:
    while True:
        try:
            return httpx.get(url, timeout=10)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_serve_metrics_port_serves_them_apart_on_loopback(tmp_path: Path) -> None:
    install_home(tmp_path)
    port, metrics = _free_port(), _free_port()
    env = {**os.environ, "ADESYNC_HOME": str(tmp_path), "ADESYNC_LOG_LEVEL": "WARNING"}
    env.pop("ADESYNC_DATABASE_URL", None)
    command = ["serve", "--no-scheduler", "--port", str(port), "--metrics-port", str(metrics)]
    server = subprocess.Popen(
        [sys.executable, "-m", "adesync.cli", *command],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        apart = _get(f"http://127.0.0.1:{metrics}/metrics", deadline)
        assert apart.status_code == 200 and "adesync_sync_runs_total" in apart.text
        assert _get(f"http://127.0.0.1:{port}/metrics", deadline).status_code == 401
        # Bound to 127.0.0.1 only: another loopback address finds nothing there.
        with socket.socket() as other, pytest.raises(OSError):
            other.settimeout(5)
            other.connect(("127.0.0.2", metrics))
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)
    assert b"Traceback" not in err


def test_serve_metrics_port_with_workers_is_one_clear_error(
    home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    result = invoke(capsys, "serve", "--workers", "2", "--metrics-port", str(_free_port()))
    assert result.code != 0 and "--metrics-port" in result.err
    assert "Traceback" not in result.err


def test_worker_metrics_port_listens_on_loopback_only(tmp_path: Path) -> None:
    """``adesync worker --metrics-port`` answers without authentication, so by default only on
    127.0.0.1 (``--metrics-host`` opens it)."""
    install_home(tmp_path)
    metrics = _free_port()
    env = {**os.environ, "ADESYNC_HOME": str(tmp_path), "ADESYNC_LOG_LEVEL": "WARNING"}
    env.pop("ADESYNC_DATABASE_URL", None)
    worker = subprocess.Popen(
        [sys.executable, "-m", "adesync.cli", "worker", "--metrics-port", str(metrics)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        answer = _get(f"http://127.0.0.1:{metrics}/metrics", deadline)
        assert answer.status_code == 200 and "adesync_sync_runs_total" in answer.text
        with socket.socket() as other, pytest.raises(OSError):
            other.settimeout(5)
            other.connect(("127.0.0.2", metrics))
    finally:
        worker.terminate()
        _, err = worker.communicate(timeout=30)
    assert b"Traceback" not in err
