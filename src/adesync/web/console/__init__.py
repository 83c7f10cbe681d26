"""The console: server-rendered pages for people (sign-in, tokens, devices, profiles, health,
audit log, help). Forms post back here with a CSRF token; nothing needs a build step."""

from __future__ import annotations

from adesync.web.console.routes import console_router, install_console
from adesync.web.console.token_forms import token_forms_router

__all__ = ["console_router", "install_console", "token_forms_router"]
