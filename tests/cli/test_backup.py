"""``adesync backup`` and ``adesync restore``: a new machine rebuilt from one archive."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from adesync.services.backup import BackupUnreadable, open_archive, seal_archive
from adesync.store.backup_rows import KEPT, REBUILT, TABLES
from adesync.store.database import Database
from adesync.store.keycheck import secret_columns
from adesync.store.secrets import read_key_file
from adesync.store.tables import tokens
from adesync.store.tables_sync import devices, profiles
from adesync.store.tables_web import api_keys, users
from adesync.web.accounts import authenticate, lookup_api_key
from tests.cli_runner import Result, invoke
from tests.conftest import Home, _truncate_postgres
from tests.sim_fixtures import RunningSimulator, SimKeyPair, sim_keypair, simulator
from tests.sync.helpers import T0, insert_token

__all__ = ["sim_keypair", "simulator"]

PASSPHRASE = "correct horse battery staple"
NOTIFY = 'webhook_url = "https://hooks.example/adesync"\nwebhook_secret = "whsec-0123"\n'


@dataclass
class Source:
    """What the backed-up installation held: secrets in the clear, to compare after restore."""

    archive: Path
    credentials: dict[str, str]
    private_key: str
    password: str
    api_key: str


def one_sentence(result: Result) -> str:
    assert result.code == 1, (result.code, result.err)
    assert result.out == "" and result.err.count("\n") == 1, result.err
    return result.err


async def seed(home: Home, simulator: RunningSimulator, keypair: SimKeyPair) -> dict[str, str]:
    server = simulator.create_server("Backup", devices=30)
    db = Database(home.db_url)
    try:
        token_id = await insert_token(
            db,
            home.box,
            "north",
            lease_owner=None,
            credentials=server.credentials,
            dep_url=simulator.base_url,
            token_type="asm",
            server_uuid=server.uuid,
            org_name="Example School",
            active_private_key=home.box.seal_text(keypair.key_pem),
            active_certificates=keypair.certificate_pem,
            active_since=T0,
            pending_private_key=home.box.seal_text("PENDING PEM"),
            pending_certificates="PENDING CERT",
            default_profile_uuid="P-1",
        )
        async with db.write() as session:
            await session.execute(
                profiles.insert().values(
                    token_id=token_id,
                    profile_uuid="P-1",
                    profile_name="Staff",
                    url="https://mdm.example/enroll",
                    definition='{"profile_name": "Staff"}',
                    defined_at=T0,
                )
            )
    finally:
        await db.dispose()
    return server.credentials


@pytest.fixture
async def source(
    home: Home,
    simulator: RunningSimulator,
    sim_keypair: SimKeyPair,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Source:
    """A home with a token (keys, OAuth values, a profile), a user, an API key and notify.toml,
    backed up; then the machine is gone: a new home with a new key and an empty database."""
    credentials = await seed(home, simulator, sim_keypair)
    added = invoke(capsys, "users", "add", "alice", "--role", "operator")
    created = invoke(capsys, "apikeys", "create", "ci", "--role", "viewer")
    assert added.code == 0 and created.code == 0, added.err + created.err
    (home.path / "notify.toml").write_text(NOTIFY)
    archive = tmp_path / "backups" / "adesync.backup"
    archive.parent.mkdir()
    monkeypatch.setenv("ADESYNC_BACKUP_PASSPHRASE", PASSPHRASE)
    made = invoke(capsys, "backup", str(archive))
    assert made.code == 0, made.err
    assert "1 token(s), 1 profile(s), 1 user(s) and 1 API key(s)" in made.out
    new_home = tmp_path / "new-home"
    monkeypatch.setenv("ADESYNC_HOME", str(new_home))
    if home.db_url.startswith("postgresql"):
        _truncate_postgres(home.db_url)  # the same server, emptied: a new machine's database
    else:
        monkeypatch.delenv("ADESYNC_DATABASE_URL")
    assert invoke(capsys, "init").code == 0
    assert read_key_file(new_home / "secret.key").key_check != home.box.key_check
    return Source(archive, credentials, sim_keypair.key_pem, added.out.strip(), created.out.strip())


def target_url() -> str:
    url = os.environ.get("ADESYNC_DATABASE_URL")
    return url or f"sqlite+aiosqlite:///{Path(os.environ['ADESYNC_HOME']) / 'adesync.db'}"


async def stored(what: Any) -> list[Any]:
    """Every row of table ``what`` in the new installation's database."""
    db = Database(target_url())
    try:
        async with db.read() as session:
            return list((await session.execute(select(what))).all())
    finally:
        await db.dispose()


def test_the_archive_is_private_and_holds_no_secret_in_the_clear(source: Source) -> None:
    assert stat.S_IMODE(os.stat(source.archive).st_mode) == 0o600
    data = source.archive.read_bytes()
    assert data.startswith(b"adesync-backup\n")
    for secret in (*source.credentials.values(), "PRIVATE KEY", "whsec-0123", "alice"):
        assert secret.encode() not in data


async def test_a_restore_into_a_new_installation_gives_back_working_tokens_and_accounts(
    source: Source, capsys: pytest.CaptureFixture[str]
) -> None:
    restored = invoke(capsys, "restore", str(source.archive))
    assert restored.code == 0, restored.err
    assert "1 token(s), 1 profile(s), 1 user(s) and 1 API key(s)" in restored.out
    home = Path(os.environ["ADESYNC_HOME"])
    new_box = read_key_file(home / "secret.key")
    [row] = await stored(tokens)
    assert json.loads(new_box.open_text(row.oauth_credentials)) == source.credentials
    assert new_box.open_text(row.active_private_key) == source.private_key
    assert new_box.open_text(row.pending_private_key) == "PENDING PEM"
    assert (row.token_type, row.org_name, row.default_profile_uuid) == (
        "asm",
        "Example School",
        "P-1",
    )
    assert row.cursor is None  # devices are not in the archive: the next sync fetches all
    assert len(await stored(profiles)) == 1
    shown = invoke(capsys, "tokens", "show", "north", "--json")
    assert shown.code == 0, shown.err
    synced = invoke(capsys, "sync", "north", "--json")
    assert synced.code == 0, synced.err
    assert json.loads(synced.out)[0]["added"] == 30
    assert (home / "notify.toml").read_text() == NOTIFY
    assert stat.S_IMODE(os.stat(home / "notify.toml").st_mode) == 0o600
    db = Database(target_url())
    try:
        assert await authenticate(db, "alice", source.password) is not None
        assert await lookup_api_key(db, source.api_key) is not None
    finally:
        await db.dispose()


async def test_a_clash_is_refused_and_force_replaces_it(
    source: Source, capsys: pytest.CaptureFixture[str]
) -> None:
    assert invoke(capsys, "restore", str(source.archive)).code == 0
    assert invoke(capsys, "sync", "north", "--json").code == 0
    assert len(await stored(devices)) == 30
    refused = invoke(capsys, "restore", str(source.archive))
    message = one_sentence(refused)
    assert "north" in message and "alice" in message and "ci" in message
    assert "--force" in message
    assert len(await stored(devices)) == 30  # nothing changed
    forced = invoke(capsys, "restore", str(source.archive), "--force")
    assert forced.code == 0, forced.err
    assert "replacing 3" in forced.out
    assert len(await stored(tokens)) == 1 and len(await stored(users)) == 2  # admin, alice
    assert len(await stored(api_keys)) == 1
    assert await stored(devices) == []  # the replaced token's devices went with it
    assert invoke(capsys, "sync", "north", "--json").code == 0


async def test_a_wrong_passphrase_or_a_damaged_file_is_refused_and_changes_nothing(
    source: Source, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ADESYNC_BACKUP_PASSPHRASE", "not the passphrase")
    assert "passphrase" in one_sentence(invoke(capsys, "restore", str(source.archive)))
    monkeypatch.setenv("ADESYNC_BACKUP_PASSPHRASE", PASSPHRASE)
    damaged = source.archive.with_name("damaged.backup")
    data = bytearray(source.archive.read_bytes())
    data[-20] ^= 1
    damaged.write_bytes(bytes(data))
    assert "cannot be read" in one_sentence(invoke(capsys, "restore", str(damaged)))
    foreign = source.archive.with_name("foreign.backup")
    foreign.write_text("hello")
    assert "not an adesync backup" in one_sentence(invoke(capsys, "restore", str(foreign)))
    assert await stored(tokens) == []
    assert [u.name for u in await stored(users)] == ["admin"]
    assert not (Path(os.environ["ADESYNC_HOME"]) / "notify.toml").exists()


def test_without_a_passphrase_or_a_terminal_backup_is_one_sentence(
    home: Home, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = invoke(capsys, "backup", str(tmp_path / "x.backup"))
    assert "ADESYNC_BACKUP_PASSPHRASE" in one_sentence(result)
    assert not (tmp_path / "x.backup").exists()


def test_every_column_of_a_backed_up_table_is_kept_or_rebuilt_and_every_secret_kept() -> None:
    for name, table in TABLES.items():
        columns = {c.name for c in table.columns}
        assert set(KEPT[name]).isdisjoint(REBUILT[name]), name
        assert set(KEPT[name]) | set(REBUILT[name]) == columns, name
    for table_name, column_name in secret_columns():
        assert column_name in KEPT.get(table_name, ()), f"{table_name}.{column_name}"


def test_an_archive_opens_with_its_passphrase_only() -> None:
    document = {"format": "adesync-backup", "tokens": []}
    sealed = seal_archive(document, "pass")
    assert open_archive(sealed, "pass") == document
    with pytest.raises(BackupUnreadable):
        open_archive(sealed, "Pass")
