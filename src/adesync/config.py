"""Settings, read from ``ADESYNC_*`` environment variables (pydantic-settings)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from adesync.errors import ConfigError

Lang = Literal["en", "zh-CN"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
MetricsAuth = Literal["viewer", "none"]

DEFAULT_HOME = Path("~/.local/share/adesync")
SQLITE_PREFIXES = ("sqlite+aiosqlite://", "sqlite://")
POSTGRES_PREFIXES = ("postgresql+psycopg://", "postgresql://", "postgres://")


def normalise_database_url(url: str) -> str:
    """Return ``url`` with adesync's async driver, or raise ConfigError naming what is wrong."""
    url = url.strip()
    for prefix in SQLITE_PREFIXES:
        if url.startswith(prefix):
            rest = url[len(prefix) :]
            if not rest.startswith("/"):
                raise ConfigError(
                    "ADESYNC_DATABASE_URL is not a usable SQLite URL: write "
                    "sqlite:///relative/path.db or sqlite:////absolute/path.db."
                )
            return "sqlite+aiosqlite://" + rest
    for prefix in POSTGRES_PREFIXES:
        if url.startswith(prefix):
            rest = url[len(prefix) :]
            if not rest or (rest.startswith("/") and len(rest) == 1):
                raise ConfigError(
                    "ADESYNC_DATABASE_URL names no PostgreSQL server: write "
                    "postgresql+psycopg://user@host:5432/dbname."
                )
            return "postgresql+psycopg://" + rest
    scheme = url.split(":", 1)[0] if ":" in url else url
    raise ConfigError(
        f"ADESYNC_DATABASE_URL uses {scheme or 'no'} scheme; adesync supports "
        "sqlite:///PATH and postgresql+psycopg://USER@HOST/DB."
    )


def public_origin(url: str) -> str:
    """``url``'s origin (``scheme://host[:port]``, lower case), or ConfigError when it is not
    an http(s) URL of a host."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"ADESYNC_PUBLIC_URL={url!r} is not valid: write the console's address as a browser "
            "sees it, such as https://adesync.example.com."
        )
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"ADESYNC_PUBLIC_URL={url!r} has an invalid port.") from None
    host = parts.hostname.lower()
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme.lower()}://{host}" + (f":{port}" if port is not None else "")


class Settings(BaseSettings):
    """Everything adesync reads from the environment; see the README for each variable."""

    model_config = SettingsConfigDict(env_prefix="ADESYNC_", extra="ignore")

    home: Path = DEFAULT_HOME
    database_url: str | None = None
    secret_key: str | None = Field(default=None, repr=False)
    backup_passphrase: str | None = Field(default=None, repr=False)
    lang: Lang = "en"
    log_level: LogLevel = "INFO"
    log_json: bool = False
    docs_url: str | None = None

    # Talking to Apple.
    user_agent: str | None = None
    protocol_version: int = Field(default=10, ge=1, le=99)
    max_retry_after_seconds: float = Field(default=30.0, ge=0)
    # Hosts other than Apple's a token's dep_url may name when set through the API or the
    # console: comma-separated host:port globs (``127.0.0.1:*``); see adesync.outbound.
    allowed_dep_hosts: str = ""

    # Sync schedule (see the README's "Sync" section).
    sync_interval_minutes: float = Field(default=30.0, gt=0)
    manual_sync_interval_minutes: float = Field(default=15.0, ge=0)
    full_fetch_interval_days: float = Field(default=7.0, ge=0)
    error_backoff_max_hours: float = Field(default=6.0, gt=0)
    flagged_retry_minutes: float = Field(default=60.0, gt=0)
    lease_seconds: float = Field(default=120.0, ge=5)
    scheduler_poll_seconds: float = Field(default=5.0, gt=0)

    # Serving (see the README's "Configuration" section).
    public_url: str | None = None
    forwarded_allow_ips: str = ""
    metrics_auth: MetricsAuth = "viewer"
    # Serving limits of `adesync serve` (per serve process; see the README's "Deploying
    # safely"): the request line and headers of one request, how long they may take to
    # arrive, and the connections and requests served at once (more are answered 503).
    header_max_bytes: int = Field(default=16 * 1024, ge=1024)
    header_timeout_seconds: float = Field(default=10.0, gt=0)
    limit_concurrency: int = Field(default=200, ge=2)

    @field_validator("home", mode="after")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("database_url", mode="after")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        return None if value is None or not value.strip() else normalise_database_url(value)

    @field_validator("public_url", mode="after")
    @classmethod
    def _check_public_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return public_origin(value)

    @field_validator("forwarded_allow_ips", mode="after")
    @classmethod
    def _tidy_proxies(cls, value: str) -> str:
        return ",".join(part.strip() for part in value.split(",") if part.strip())

    @property
    def https(self) -> bool:
        """Whether the console is served over HTTPS (``ADESYNC_PUBLIC_URL`` says so): cookies
        are ``Secure`` with ``__Host-`` names and answers carry HSTS."""
        return self.public_url is not None and self.public_url.startswith("https://")

    @property
    def effective_database_url(self) -> str:
        """The database adesync uses: the setting, or the SQLite file in ``home``."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.home / 'adesync.db'}"

    @property
    def secret_key_file(self) -> Path:
        return self.home / "secret.key"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")


def load_settings(**overrides: object) -> Settings:
    """Read the settings, turning pydantic's report into one sentence per bad variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ConfigError:
        raise
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "setting"
        ctx_error = (first.get("ctx") or {}).get("error")
        if isinstance(ctx_error, ConfigError):
            raise ctx_error from None
        value = os.environ.get(f"ADESYNC_{field.upper()}", "")
        hint = {
            "lang": "use en or zh-CN",
            "log_level": "use DEBUG, INFO, WARNING or ERROR",
            "log_json": "use true or false",
            "metrics_auth": "use viewer or none",
        }.get(field, first["msg"])
        raise ConfigError(f"ADESYNC_{field.upper()}={value!r} is not valid: {hint}.") from None
