"""Notification settings from the environment and ADESYNC_HOME/notify.toml."""

from __future__ import annotations

from pathlib import Path

import pytest

from adesync.errors import ConfigError
from adesync.notify.settings import load_notify_settings


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ADESYNC_HOME", str(tmp_path))
    return tmp_path


def test_nothing_configured_means_no_channel(home: Path) -> None:
    settings = load_notify_settings()
    assert settings.channels() == []
    assert settings.expiry_reminder_days == [30, 14, 7, 1]


def test_file_settings_and_environment_over_file(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (home / "notify.toml").write_text(
        'webhook_url = "https://hooks.example.org/a"\n'
        'webhook_secret = "s3cret"\n'
        'smtp_host = "127.0.0.1"\n'
        'smtp_security = "none"\n'
        'email_from = "adesync@example.org"\n'
        'email_to = ["it@example.org", "ops@example.org"]\n'
        "expiry_reminder_days = [60, 7]\n"
    )
    settings = load_notify_settings()
    assert settings.channels() == ["webhook", "email"]
    assert settings.email_to == ["it@example.org", "ops@example.org"]
    assert settings.expiry_reminder_days == [60, 7]
    assert settings.secret_for("webhook") == b"s3cret"
    monkeypatch.setenv("ADESYNC_WEBHOOK_URL", "https://override.example.org/b")
    monkeypatch.setenv("ADESYNC_EMAIL_TO", "one@example.org, two@example.org")
    settings = load_notify_settings()
    assert settings.webhook_url == "https://override.example.org/b"
    assert settings.email_to == ["one@example.org", "two@example.org"]


def test_device_events_sign_with_their_own_secret_or_the_webhooks(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADESYNC_DEVICE_EVENTS_URL", "http://127.0.0.1:9/events")
    monkeypatch.setenv("ADESYNC_WEBHOOK_SECRET", "shared")
    assert load_notify_settings().secret_for("device_events") == b"shared"
    monkeypatch.setenv("ADESYNC_DEVICE_EVENTS_SECRET", "own")
    assert load_notify_settings().secret_for("device_events") == b"own"


@pytest.mark.parametrize(
    ("content", "env", "message"),
    [
        ('webhook_url = "https://x"\n', {}, "ADESYNC_WEBHOOK_SECRET"),
        ('webhok_url = "https://x"\n', {}, "unknown setting 'webhok_url'"),
        ("webhook_url = [\n", {}, "not a readable TOML file"),
        ("", {"ADESYNC_WEBHOOK_URL": "ftp://x", "ADESYNC_WEBHOOK_SECRET": "s"}, "http://"),
        ("", {"ADESYNC_SMTP_PORT": "seventy"}, "smtp_port"),
        ("", {"ADESYNC_SMTP_HOST": "mail"}, "ADESYNC_EMAIL_FROM"),
        ("", {"ADESYNC_DEVICE_EVENTS_URL": "https://x"}, "ADESYNC_DEVICE_EVENTS_SECRET"),
    ],
)
def test_bad_settings_get_one_clear_sentence(
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    content: str,
    env: dict[str, str],
    message: str,
) -> None:
    (home / "notify.toml").write_text(content)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message) as caught:
        load_notify_settings()
    assert "\n" not in caught.value.message
