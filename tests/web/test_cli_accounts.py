from __future__ import annotations

import json
from pathlib import Path

import pytest

from adesync.store.database import Database
from adesync.web import accounts
from tests.cli_runner import invoke
from tests.conftest import Home


def _init(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "h"
    monkeypatch.setenv("ADESYNC_HOME", str(home))
    monkeypatch.setenv("ADESYNC_DATABASE_URL", db_url)
    return home


async def test_init_creates_admin_once_and_prints_its_password(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _init(db_url, tmp_path, monkeypatch)
    first = invoke(capsys, "init")
    assert first.code == 0, first.err
    line = next(x for x in first.out.splitlines() if "console user admin" in x)
    password = line.split("with password ", 1)[1].split(" ", 1)[0]
    db = Database(db_url)
    try:
        assert await accounts.authenticate(db, "admin", password) is not None
    finally:
        await db.dispose()
    second = invoke(capsys, "init")
    assert second.code == 0
    assert "password" not in second.out
    assert "nothing changed" in second.out


def test_users_add_list_reset_delete(home: Home, capsys: pytest.CaptureFixture[str]) -> None:
    added = invoke(capsys, "users", "add", "dana", "--role", "operator")
    assert added.code == 0, added.err
    assert len(added.out.strip()) >= 20
    assert "shown once" in added.err
    listed = invoke(capsys, "users", "list", "--json")
    doc = json.loads(listed.out)
    assert [(u["name"], u["role"], u["last_login_at"]) for u in doc] == [("dana", "operator", None)]
    again = invoke(capsys, "users", "add", "dana", "--role", "viewer")
    assert again.code != 0 and "already exists" in again.err and again.out == ""
    bad = invoke(capsys, "users", "add", "eve", "--role", "ingest")
    assert bad.code != 0 and "Unknown role 'ingest'" in bad.err
    reset = invoke(capsys, "users", "reset-password", "dana")
    assert reset.code == 0 and reset.out.strip() != added.out.strip()
    assert invoke(capsys, "users", "delete", "dana").code == 0
    assert json.loads(invoke(capsys, "users", "list", "--json").out) == []
    missing = invoke(capsys, "users", "delete", "dana")
    assert missing.code != 0 and "no user named 'dana'" in missing.err


def test_apikeys_create_list_revoke(home: Home, capsys: pytest.CaptureFixture[str]) -> None:
    created = invoke(capsys, "apikeys", "create", "ci", "--role", "ingest")
    assert created.code == 0, created.err
    key = created.out.strip()
    assert key.startswith("ades_")
    listed = json.loads(invoke(capsys, "apikeys", "list", "--json").out)
    assert listed[0]["name"] == "ci" and listed[0]["role"] == "ingest"
    assert key not in json.dumps(listed)
    assert key.startswith(listed[0]["prefix"] + "_")
    bad = invoke(capsys, "apikeys", "create", "x", "--role", "superuser")
    assert bad.code != 0 and "Unknown role" in bad.err
    assert invoke(capsys, "apikeys", "revoke", "ci").code == 0
    assert invoke(capsys, "apikeys", "revoke", "ci").code != 0
