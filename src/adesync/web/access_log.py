"""Access logs never keep an API key: a ``key=`` value in a logged request line is replaced.

The ingest webhooks take an ingest key in ``?key=`` for MDM servers that cannot send headers,
and uvicorn's access log (the ``uvicorn.access`` logger) writes the whole request line.
"""

from __future__ import annotations

import logging
import re

__all__ = ["RedactKeys", "redact_access_log"]

ACCESS_LOGGER = "uvicorn.access"
_KEY_VALUE = re.compile(r"(?i)((?:^|[?&;])key=)[^&;#\s\"]*")


def _redact(value: object) -> object:
    return _KEY_VALUE.sub(r"\1[redacted]", value) if isinstance(value, str) else value


class RedactKeys(logging.Filter):
    """Replaces the value of every ``key=`` parameter in a record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redact(arg) for arg in record.args)
        return True


def redact_access_log() -> None:
    """Add :class:`RedactKeys` to the access logger once (a serving process's start)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(existing, RedactKeys) for existing in logger.filters):
        logger.addFilter(RedactKeys())
