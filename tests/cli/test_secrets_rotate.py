"""``secrets rotate`` cannot lose a key: each race and kill of issue 17, made deterministic by
pausing the rotating process at the window (:mod:`adesync.barriers`) and acting there."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
from pathlib import Path

import pytest
from sqlalchemy import select

from adesync.services.rotation import AFTER_COMMIT, BEFORE_COMMIT
from adesync.store.database import Database
from adesync.store.keycheck import secret_columns
from adesync.store.schema import metadata
from adesync.store.secrets import SecretBox, read_key_file
from tests.cli_runner import invoke
from tests.conftest import Home
from tests.sync.helpers import insert_token
from tests.sync.processes import CliResult, cli_env, finish, run_cli, start_cli, wait_until

TOKENS = 4


async def seed(home: Home) -> int:
    """Tokens with OAuth values and key pairs sealed under the home's key; how many values."""
    db = Database(home.db_url)
    try:
        for i in range(TOKENS):
            await insert_token(
                db,
                home.box,
                f"t{i}",
                lease_owner=None,
                active_private_key=home.box.seal_text(f"PRIVATE KEY {i}"),
                pending_private_key=home.box.seal_text(f"PENDING KEY {i}"),
            )
    finally:
        await db.dispose()
    return TOKENS * 3


async def opened_by(db_url: str, box: SecretBox) -> int:
    """How many sealed values ``box`` opens (raises on the first it cannot)."""
    opened = 0
    db = Database(db_url)
    try:
        async with db.read() as session:
            for table_name, column_name in secret_columns():
                column = metadata.tables[table_name].c[column_name]
                for (sealed,) in await session.execute(select(column).where(column.is_not(None))):
                    box.open(sealed)
                    opened += 1
    finally:
        await db.dispose()
    return opened


def paused_env(tmp_path: Path, barrier: str, **settings: str) -> dict[str, str]:
    return cli_env(ADESYNC_TEST_PAUSE=barrier, ADESYNC_TEST_PAUSE_DIR=str(tmp_path), **settings)


async def reached(tmp_path: Path, barrier: str) -> None:
    async def there() -> bool:
        return (tmp_path / f"{barrier}.reached").exists()

    await wait_until(there, f"the rotation to reach {barrier}")


def release(tmp_path: Path, barrier: str) -> None:
    (tmp_path / f"{barrier}.go").touch()


def one_sentence(result: CliResult) -> str:
    assert result.code == 1, (result.code, result.err)
    assert result.err.count("\n") == 1 and "Traceback" not in result.err
    return result.err


async def test_a_command_during_a_rotation_leaves_every_secret_readable(
    home: Home, tmp_path: Path
) -> None:
    values = await seed(home)
    rotate = await start_cli("secrets", "rotate", env=paused_env(tmp_path, BEFORE_COMMIT))
    await reached(tmp_path, BEFORE_COMMIT)
    listed = await run_cli("tokens", "list", "--json", env=cli_env())
    assert listed.code == 0, listed.err
    assert (home.path / "secret.key.new").exists()  # read, never deleted by another process
    release(tmp_path, BEFORE_COMMIT)
    done = await finish(rotate)
    assert done.code == 0, done.err
    new_key = read_key_file(home.path / "secret.key")
    assert new_key.key_check != home.box.key_check
    assert await opened_by(home.db_url, new_key) == values
    assert not (home.path / "secret.key.new").exists()
    [old] = home.path.glob("secret.key.old-*")
    assert read_key_file(old).key_check == home.box.key_check
    assert stat.S_IMODE(os.stat(old).st_mode) == 0o600
    assert str(old) in done.out


async def test_a_second_rotation_during_the_first_is_refused_and_changes_nothing(
    home: Home, tmp_path: Path
) -> None:
    values = await seed(home)
    first = await start_cli("secrets", "rotate", env=paused_env(tmp_path, BEFORE_COMMIT))
    await reached(tmp_path, BEFORE_COMMIT)
    pending = (home.path / "secret.key.new").read_text()
    second = await run_cli("secrets", "rotate", env=cli_env())
    assert "Another secret-key rotation is running" in one_sentence(second)
    assert (home.path / "secret.key.new").read_text() == pending
    release(tmp_path, BEFORE_COMMIT)
    assert (await finish(first)).code == 0
    assert await opened_by(home.db_url, read_key_file(home.path / "secret.key")) == values


async def test_a_rotation_killed_after_its_commit_leaves_the_key_that_opens_the_database(
    home: Home, tmp_path: Path
) -> None:
    values = await seed(home)
    rotate = await start_cli("secrets", "rotate", env=paused_env(tmp_path, AFTER_COMMIT))
    await reached(tmp_path, AFTER_COMMIT)
    rotate.send_signal(signal.SIGKILL)
    await finish(rotate)
    pending = read_key_file(home.path / "secret.key.new")
    assert await opened_by(home.db_url, pending) == values
    # Another command uses the pending key, read-only: it leaves every file as it was.
    before = sorted(p.name for p in home.path.iterdir())
    listed = await run_cli("tokens", "list", "--json", env=cli_env())
    assert listed.code == 0, listed.err
    assert sorted(p.name for p in home.path.iterdir()) == before
    # The next rotation finishes the interrupted one, then rotates.
    again = await run_cli("secrets", "rotate", env=cli_env())
    assert again.code == 0, again.err
    assert "Finished an interrupted rotation" in again.err
    assert await opened_by(home.db_url, read_key_file(home.path / "secret.key")) == values
    kept = {read_key_file(p).key_check for p in home.path.glob("secret.key.old-*")}
    assert kept == {home.box.key_check, pending.key_check}


async def test_a_rotation_killed_before_its_commit_leaves_the_old_key_and_its_key_set_aside(
    home: Home, tmp_path: Path
) -> None:
    values = await seed(home)
    rotate = await start_cli("secrets", "rotate", env=paused_env(tmp_path, BEFORE_COMMIT))
    await reached(tmp_path, BEFORE_COMMIT)
    unused = (home.path / "secret.key.new").read_text()
    rotate.send_signal(signal.SIGKILL)
    await finish(rotate)
    assert await opened_by(home.db_url, home.box) == values
    assert (await run_cli("tokens", "list", "--json", env=cli_env())).code == 0
    again = await run_cli("secrets", "rotate", env=cli_env())
    assert again.code == 0, again.err
    assert "Set aside the unused key" in again.err
    [aside] = home.path.glob("secret.key.unused-*")
    assert aside.read_text() == unused  # set aside, never deleted
    assert await opened_by(home.db_url, read_key_file(home.path / "secret.key")) == values


async def test_with_the_key_in_the_environment_a_new_key_file_is_required_and_written_first(
    home: Home, tmp_path: Path
) -> None:
    values = await seed(home)
    (home.path / "secret.key").unlink()
    env_key = {"ADESYNC_SECRET_KEY": home.box.to_text()}
    refused = await run_cli("secrets", "rotate", env=cli_env(**env_key))
    assert "--new-key-file" in one_sentence(refused)
    target = tmp_path / "keys" / "adesync-new.key"
    target.parent.mkdir()
    rotate = await start_cli(
        "secrets",
        "rotate",
        "--new-key-file",
        str(target),
        env=paused_env(tmp_path, AFTER_COMMIT, **env_key),
    )
    await reached(tmp_path, AFTER_COMMIT)
    rotate.send_signal(signal.SIGKILL)  # between the commit and the print
    await finish(rotate)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    new_key = read_key_file(target)
    assert await opened_by(home.db_url, new_key) == values
    listed = await run_cli(
        "tokens", "list", "--json", env=cli_env(ADESYNC_SECRET_KEY=new_key.to_text())
    )
    assert listed.code == 0, listed.err


async def test_a_rotation_with_the_key_in_the_environment_prints_where_the_new_key_is(
    home: Home, tmp_path: Path
) -> None:
    values = await seed(home)
    target = tmp_path / "adesync-new.key"
    env = cli_env(ADESYNC_SECRET_KEY=home.box.to_text())
    done = await run_cli("secrets", "rotate", "--new-key-file", str(target), env=env)
    assert done.code == 0, done.err
    assert str(target) in done.out
    new_key = read_key_file(target)
    assert new_key.to_text() not in done.out + done.err  # the key itself is never printed
    assert await opened_by(home.db_url, new_key) == values
    # An existing file is never overwritten: it may hold a key.
    env = cli_env(ADESYNC_SECRET_KEY=new_key.to_text())
    again = await run_cli("secrets", "rotate", "--new-key-file", str(target), env=env)
    assert "already exists" in one_sentence(again)
    assert read_key_file(target).key_check == new_key.key_check


async def test_a_missing_key_says_to_restore_it_and_init_writes_no_key(
    home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    await seed(home)
    key_file = home.path / "secret.key"
    key_file.unlink()
    listed = await asyncio.to_thread(invoke, capsys, "tokens", "list")
    assert listed.code != 0
    assert "restore" in listed.err and "init" not in listed.err
    initialised = await asyncio.to_thread(invoke, capsys, "init")
    assert initialised.code != 0
    assert "restore" in initialised.err and "init" not in initialised.err
    assert not key_file.exists()
