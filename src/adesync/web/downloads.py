"""How a download names its file: RFC 6266 ``Content-Disposition`` with an ASCII fallback and
the exact name in RFC 5987 ``filename*`` (a header is latin-1; a token name may not be)."""

from __future__ import annotations

import re
from urllib.parse import quote

__all__ = ["attachment"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def attachment(filename: str) -> dict[str, str]:
    """The ``Content-Disposition`` header that saves the answer as ``filename``."""
    fallback = _UNSAFE.sub("_", filename) or "download"
    exact = quote(filename, safe="")
    return {"Content-Disposition": f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{exact}"}
