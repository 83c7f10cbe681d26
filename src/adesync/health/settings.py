"""The thresholds the rules use; the configurable ones come from ``ADESYNC_*`` variables."""

from __future__ import annotations

import os

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from adesync.errors import ConfigError

__all__ = ["Limits", "load_limits"]


class Limits(BaseSettings):
    """When a rule fires. Defaults follow the findings catalogue (and Intune's connector
    thresholds for stale syncs); the ``ADESYNC_`` variables of the same name override them."""

    model_config = SettingsConfigDict(env_prefix="ADESYNC_", extra="ignore", frozen=True)

    expiry_warning_days: int = Field(default=30, ge=1, le=365)
    certificate_warning_days: int = Field(default=60, ge=1, le=3650)
    stale_warning_hours: float = Field(default=24.0, gt=0)
    stale_error_hours: float = Field(default=72.0, gt=0)
    never_synced_grace_hours: float = Field(default=1.0, ge=0)
    scheduler_down_minutes: float = Field(default=5.0, gt=0)
    clock_skew_limit_seconds: float = Field(default=300.0, gt=0)
    cursor_recovered_hours: float = Field(default=24.0, gt=0)
    token_capacity: int = Field(default=200_000, ge=1)
    sample_size: int = Field(default=5, ge=1, le=100)


def load_limits() -> Limits:
    """The limits from the environment, or ConfigError naming the bad variable."""
    try:
        limits = Limits()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = f"ADESYNC_{str(first['loc'][0]).upper()}" if first["loc"] else "a setting"
        value = os.environ.get(name, "")
        raise ConfigError(f"{name}={value!r} is not valid: {first['msg']}.") from None
    if limits.stale_error_hours <= limits.stale_warning_hours:
        raise ConfigError(
            "ADESYNC_STALE_ERROR_HOURS must be greater than ADESYNC_STALE_WARNING_HOURS."
        )
    return limits
