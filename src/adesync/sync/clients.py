"""Building Apple clients for stored tokens, with one session cache per process."""

from __future__ import annotations

import functools
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import Protocol

import httpx

from adesync.apple import AppleClient, OAuthCredentials, SessionCache
from adesync.config import Settings
from adesync.errors import AdesyncError
from adesync.outbound import AllowedHosts, GuardedTransport, dep_refusal
from adesync.sync.hooks import apple_answered
from adesync.sync.model import OAuthValues

# Sessions are shared by every client of the same token in this process.
SESSIONS = SessionCache()


class ClientFactory(Protocol):
    """Makes the client of one token: ``checked`` when its ``dep_url`` came through the API or
    the console, so every connection is checked against ``ADESYNC_ALLOWED_DEP_HOSTS``."""

    def __call__(
        self, dep_url: str, values: OAuthValues, *, checked: bool = False
    ) -> AppleClient: ...


class NoCredentials(AdesyncError):
    code = "no_credentials"

    def __init__(self, token: str) -> None:
        super().__init__(
            f"Token {token} has no server token yet; add its token file (.p7m) first.",
            data={"name": token},
        )


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for the process: httpx builds a new one per client otherwise, loading
    the CA bundle each time (about 50 ms of CPU per token synced)."""
    return httpx.create_ssl_context()


def _transport() -> httpx.AsyncHTTPTransport:
    # TCP_NODELAY as adesync.apple's default transport: a POST's headers and body go out apart.
    return httpx.AsyncHTTPTransport(
        verify=_tls(), socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
    )


def client_factory(
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    sleep: Callable[[float], Awaitable[None]] | None = None,
) -> ClientFactory:
    """A factory of AppleClients configured from the settings (``sleep`` replaces the pauses
    between retries, for tests that must not wait)."""

    policy = AllowedHosts.parse(settings.allowed_dep_hosts)

    def make(dep_url: str, values: OAuthValues, *, checked: bool = False) -> AppleClient:
        chosen = transport if transport is not None else _transport()
        if checked:
            chosen = GuardedTransport(
                chosen, lambda host, port, address: dep_refusal(policy, host, port, address)
            )
        return AppleClient(
            OAuthCredentials(
                consumer_key=values.consumer_key,
                consumer_secret=values.consumer_secret,
                access_token=values.access_token,
                access_secret=values.access_secret,
            ),
            base_url=dep_url,
            user_agent=settings.user_agent,
            protocol_version=settings.protocol_version,
            max_retry_after=settings.max_retry_after_seconds,
            transport=chosen,
            session_cache=SESSIONS,
            sleep=sleep,
            on_answer=apple_answered,
        )

    return make
