"""The console's cookies, named and flagged in one place from the settings.

Served over HTTPS (``ADESYNC_PUBLIC_URL`` starts with ``https://``) every cookie is ``Secure``
and its name starts with ``__Host-``: a browser then accepts it only from this exact host over
HTTPS, never set by another port, a subdomain or plain HTTP. Every cookie is ``HttpOnly`` and
``SameSite=Strict``.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import HTTPConnection
from starlette.responses import Response

__all__ = ["FLASH", "LANG", "PRESESSION", "SESSION", "Cookies"]

SESSION = "adesync_session"
PRESESSION = "adesync_presession"
FLASH = "adesync_flash"
LANG = "adesync_lang"


@dataclass(frozen=True)
class Cookies:
    """How this installation writes and reads its cookies (``secure``: served over HTTPS)."""

    secure: bool

    def name(self, base: str) -> str:
        return f"__Host-{base}" if self.secure else base

    def read(self, request: HTTPConnection, base: str) -> str | None:
        return request.cookies.get(self.name(base))

    def set(self, response: Response, base: str, value: str, *, max_age: int | None = None) -> None:
        response.set_cookie(
            self.name(base),
            value,
            max_age=max_age,
            path="/",
            httponly=True,
            samesite="strict",
            secure=self.secure,
        )

    def delete(self, response: Response, base: str) -> None:
        response.delete_cookie(
            self.name(base), path="/", httponly=True, samesite="strict", secure=self.secure
        )
