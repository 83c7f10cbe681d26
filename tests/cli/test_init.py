from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from adesync.store.secrets import SecretBox, write_key_file
from tests.cli_runner import invoke


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    result = invoke(capsys, "--version")
    assert result.code == 0
    assert result.out.startswith("adesync ")


def test_init_twice_changes_nothing_the_second_time(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "h"
    monkeypatch.setenv("ADESYNC_HOME", str(home))
    if db_url.startswith("postgresql"):
        monkeypatch.setenv("ADESYNC_DATABASE_URL", db_url)
    first = invoke(capsys, "init")
    assert first.code == 0, first.err
    key_file = home / "secret.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    key = key_file.read_text()
    second = invoke(capsys, "init")
    assert second.code == 0
    assert "nothing changed" in second.out
    assert key_file.read_text() == key
    assert invoke(capsys, "db", "upgrade").out.startswith("The schema is already at the latest")


def test_bad_database_url_is_one_sentence_on_stderr(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ADESYNC_DATABASE_URL", "mysql://root@localhost/x")
    result = invoke(capsys, "init")
    assert result.code != 0
    assert result.out == ""
    assert result.err.count("\n") == 1
    assert "ADESYNC_DATABASE_URL" in result.err
    assert "Traceback" not in result.err


def test_unreachable_postgres_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ADESYNC_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:9/none")
    result = invoke(capsys, "db", "upgrade")
    assert result.code != 0
    assert "cannot be reached" in result.err


def test_commands_before_init_say_to_run_init(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    result = invoke(capsys, "secrets", "rotate")
    assert result.code != 0
    assert "adesync init" in result.err


def test_a_key_that_does_not_match_the_database_stops_the_command(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "h"
    monkeypatch.setenv("ADESYNC_HOME", str(home))
    monkeypatch.setenv("ADESYNC_DATABASE_URL", db_url)
    assert invoke(capsys, "init").code == 0
    write_key_file(home / "secret.key", SecretBox.generate())  # a second machine's key
    result = invoke(capsys, "secrets", "rotate")
    assert result.code != 0
    assert "does not match this database" in result.err
    assert invoke(capsys, "init").code != 0


def test_secrets_rotate_replaces_the_key_file(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "h"
    monkeypatch.setenv("ADESYNC_HOME", str(home))
    monkeypatch.setenv("ADESYNC_DATABASE_URL", db_url)
    assert invoke(capsys, "init").code == 0
    old = (home / "secret.key").read_text()
    result = invoke(capsys, "secrets", "rotate")
    assert result.code == 0, result.err
    assert (home / "secret.key").read_text() != old
    assert stat.S_IMODE(os.stat(home / "secret.key").st_mode) == 0o600
    assert not (home / "secret.key.new").exists()
    assert invoke(capsys, "secrets", "rotate").code == 0
