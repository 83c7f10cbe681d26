"""The one way a destination (a webhook, a token's Apple URL) appears in a message, a log line
or a stored error: scheme, host and port, never userinfo, path or query (Slack and Teams keep
their secret in the path). No HTTP library is loaded for it (``diagnose --stored`` stays light).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["redact_url", "redact_urls"]

_URL_IN_TEXT = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>]+")


def redact_url(url: str) -> str:
    """``url`` as ``scheme://host[:port]``: no userinfo, path, query or fragment."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        port = parts.port
    except ValueError:
        return "(an invalid URL)"
    if not parts.scheme or not host:
        return "(an invalid URL)"
    shown = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{shown}" + (f":{port}" if port is not None else "")


def redact_urls(text: str) -> str:
    """``text`` with every URL in it redacted by :func:`redact_url` (for stored sentences)."""
    return _URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)), text)
