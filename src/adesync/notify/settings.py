"""Notification settings: ``ADESYNC_*`` environment variables over ``ADESYNC_HOME/notify.toml``.

The TOML file uses the same names without the prefix, in lower case (``webhook_url = "..."``);
an environment variable wins over the file. Lists (``email_to``, ``expiry_reminder_days``) are
TOML arrays or comma-separated text.
"""

from __future__ import annotations

import contextvars
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from adesync.config import DEFAULT_HOME
from adesync.errors import ConfigError

__all__ = [
    "CHANNELS",
    "FILE_NAME",
    "NotifySettings",
    "current_notify_settings",
    "load_notify_settings",
]

FILE_NAME = "notify.toml"
CHANNELS = ("webhook", "email", "device_events")

_FILE_VALUES: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "adesync_notify_file", default=None
)


class _FileSource(PydanticBaseSettingsSource):
    """The values read from notify.toml, below the environment in priority."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return (_FILE_VALUES.get() or {}).get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_FILE_VALUES.get() or {})


def _split(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class NotifySettings(BaseSettings):
    """Where notifications go. A channel is on when its address is set: ``webhook_url``
    (with ``webhook_secret``), ``smtp_host`` with ``email_from`` and ``email_to``, and
    ``device_events_url`` for ``devices.synced`` events."""

    model_config = SettingsConfigDict(env_prefix="ADESYNC_", extra="ignore")

    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    email_from: str | None = None
    email_to: Annotated[list[str], NoDecode] = []
    device_events_url: str | None = None
    device_events_secret: SecretStr | None = None
    lang: Literal["en", "zh-CN"] = "en"
    docs_url: str | None = None
    expiry_reminder_days: Annotated[list[int], NoDecode] = [30, 14, 7, 1]
    max_attempts: int = Field(default=10, ge=1, le=100)
    retry_seconds: float = Field(default=30.0, gt=0)
    timeout_seconds: float = Field(default=10.0, gt=0)

    @field_validator("email_to", "expiry_reminder_days", mode="before")
    @classmethod
    def _lists(cls, value: object) -> object:
        return _split(value)

    @field_validator("webhook_url", "device_events_url", mode="after")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not value.startswith(("https://", "http://")):
            raise ValueError("it must be an http:// or https:// URL")
        return value.strip()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _FileSource(settings_cls))

    def channels(self) -> list[str]:
        """The channels that are configured, in :data:`CHANNELS` order."""
        on = []
        if self.webhook_url:
            on.append("webhook")
        if self.smtp_host and self.email_from and self.email_to:
            on.append("email")
        if self.device_events_url:
            on.append("device_events")
        return on

    def secret_for(self, channel: str) -> bytes:
        """The HMAC key that signs ``channel``'s requests."""
        secret = self.device_events_secret if channel == "device_events" else None
        secret = secret or self.webhook_secret
        return b"" if secret is None else secret.get_secret_value().encode()


def _home() -> Path:
    return Path(os.environ.get("ADESYNC_HOME") or DEFAULT_HOME).expanduser()


def read_file(path: Path) -> dict[str, Any]:
    """The settings in ``path`` (empty if it does not exist); ConfigError when unreadable."""
    if not path.exists():
        return {}
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path} is not a readable TOML file ({exc}).") from None
    unknown = sorted(set(values) - set(NotifySettings.model_fields))
    if unknown:
        raise ConfigError(f"{path} has an unknown setting {unknown[0]!r}.")
    return values


def load_notify_settings(home: Path | None = None) -> NotifySettings:
    """The notification settings; ConfigError names the one bad setting in one sentence."""
    path = (home or _home()) / FILE_NAME
    token = _FILE_VALUES.set(read_file(path))
    try:
        settings = NotifySettings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "setting"
        reason = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(
            f"The notification setting {name} (ADESYNC_{name.upper()} or {path.name}) is not "
            f"valid: {reason}."
        ) from None
    finally:
        _FILE_VALUES.reset(token)
    if settings.webhook_url and settings.webhook_secret is None:
        raise ConfigError(
            "ADESYNC_WEBHOOK_SECRET (webhook_secret) must be set with ADESYNC_WEBHOOK_URL, so "
            "receivers can verify the signature."
        )
    if settings.device_events_url and not settings.secret_for("device_events"):
        raise ConfigError(
            "ADESYNC_DEVICE_EVENTS_SECRET (or ADESYNC_WEBHOOK_SECRET) must be set with "
            "ADESYNC_DEVICE_EVENTS_URL, so receivers can verify the signature."
        )
    if settings.smtp_host and not (settings.email_from and settings.email_to):
        raise ConfigError("ADESYNC_SMTP_HOST needs ADESYNC_EMAIL_FROM and ADESYNC_EMAIL_TO too.")
    if any(day < 0 for day in settings.expiry_reminder_days):
        raise ConfigError("ADESYNC_EXPIRY_REMINDER_DAYS must list whole days of 0 or more.")
    return settings


_current: dict[tuple[Any, ...], NotifySettings] = {}


def current_notify_settings() -> NotifySettings:
    """:func:`load_notify_settings`, read again only when the environment's ``ADESYNC_*``
    values or the settings file changed (a sync asks once per page of devices)."""
    path = _home() / FILE_NAME
    try:
        stat = path.stat()
        file_key: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        file_key = None
    key = (
        tuple(sorted(item for item in os.environ.items() if item[0].startswith("ADESYNC_"))),
        str(path),
        file_key,
    )
    settings = _current.get(key)
    if settings is None:
        settings = load_notify_settings()
        _current.clear()
        _current[key] = settings
    return settings
