"""What every request handler reaches through ``request.app.state.web``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from adesync.config import Settings
from adesync.store.database import Database
from adesync.store.secrets import SecretBox
from adesync.web.cookies import Cookies
from adesync.web.counts import CountCache
from adesync.web.i18n import Catalogues
from adesync.web.ratelimit import LoginLimiter
from adesync.web.sessions import CookieSigner

__all__ = ["WebState", "web_state"]


@dataclass
class WebState:
    settings: Settings
    db: Database
    box: SecretBox
    signer: CookieSigner
    catalogues: Catalogues
    limiter: LoginLimiter = field(default_factory=LoginLimiter)
    # When each API key last had its last_used_at written (monotonic seconds), to write it at
    # most once a minute.
    key_touched: dict[int, float] = field(default_factory=dict)
    # The process's SyncService (adesync.sync.service), created on first use.
    sync: Any = None
    # Device counts of the token list, reused for a few seconds.
    counts: CountCache = field(default_factory=lambda: CountCache())
    # The cookies' names and flags, from the settings.
    cookies: Cookies = field(init=False)

    def __post_init__(self) -> None:
        self.cookies = Cookies(secure=self.settings.https)

    def tokens_changed(self) -> None:
        """Forget cached device counts after this process changed a token."""
        self.counts.clear()


def web_state(request: Request) -> WebState:
    state = request.app.state.web
    assert isinstance(state, WebState)
    return state
