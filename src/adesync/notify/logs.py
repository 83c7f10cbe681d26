"""Structured logs: one JSON object per line when ``ADESYNC_LOG_JSON`` is true.

Health transitions and delivery failures log with their fields in ``extra`` (``event``,
``token``, ``old_state``, ...); :class:`JsonLineFormatter` writes those fields beside the time,
level, logger and message.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

__all__ = ["JsonLineFormatter", "configure_logging"]

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonLineFormatter(logging.Formatter):
    """A record as one line of JSON: ``time, level, logger, message`` and the extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                document[key] = value
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, ensure_ascii=False, default=str)


def configure_logging(level: str = "INFO", *, as_json: bool = False) -> None:
    """Send adesync's logs to stderr, as JSON lines when ``as_json`` (idempotent)."""
    logger = logging.getLogger("adesync")
    logger.setLevel(level)
    for handler in list(logger.handlers):
        if getattr(handler, "adesync", False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler()
    handler.adesync = True  # type: ignore[attr-defined]
    handler.setFormatter(
        JsonLineFormatter() if as_json else logging.Formatter("%(levelname)s %(name)s: %(message)s")
    )
    logger.addHandler(handler)
    logger.propagate = False
