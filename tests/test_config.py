from __future__ import annotations

from pathlib import Path

import pytest

from adesync.config import load_settings, normalise_database_url
from adesync.errors import ConfigError


def test_default_database_is_sqlite_file_in_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADESYNC_HOME", "/srv/ade")
    settings = load_settings()
    assert settings.effective_database_url == "sqlite+aiosqlite:////srv/ade/adesync.db"
    assert settings.secret_key_file == Path("/srv/ade/secret.key")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:////x/a.db", "sqlite+aiosqlite:////x/a.db"),
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h:5432/db", "postgresql+psycopg://u@h:5432/db"),
    ],
)
def test_database_urls_get_the_async_driver(given: str, expected: str) -> None:
    assert normalise_database_url(given) == expected


@pytest.mark.parametrize("bad", ["mysql://root@localhost/x", "nonsense", "sqlite:relative.db"])
def test_bad_database_url_is_one_clear_error(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv("ADESYNC_DATABASE_URL", bad)
    with pytest.raises(ConfigError, match="ADESYNC_DATABASE_URL"):
        load_settings()


def test_bad_language_names_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADESYNC_LANG", "fr")
    with pytest.raises(ConfigError, match="use en or zh-CN"):
        load_settings()


def test_log_level_is_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADESYNC_LOG_LEVEL", "debug")
    assert load_settings().log_level == "DEBUG"
