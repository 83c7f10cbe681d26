"""Apple clients built for stored tokens."""

from __future__ import annotations

import socket

from adesync.config import load_settings
from adesync.sync.clients import client_factory
from adesync.sync.model import OAuthValues

VALUES = OAuthValues("CK_1", "CS_1", "AT_1", "AS_1")


async def test_clients_share_one_tls_context_and_send_without_delay() -> None:
    """A TLS context loads the CA bundle (about 50 ms of CPU): one per process, not per token."""
    make = client_factory(load_settings())
    first = make("https://mdmenrollment.apple.com", VALUES)
    second = make("https://mdmenrollment.apple.com", VALUES)
    try:
        pools = [client._http._transport._pool for client in (first, second)]  # type: ignore[attr-defined]
        assert pools[0]._ssl_context is pools[1]._ssl_context
        assert pools[0]._ssl_context.verify_mode.name == "CERT_REQUIRED"
        assert (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1) in pools[0]._socket_options
    finally:
        await first.aclose()
        await second.aclose()
