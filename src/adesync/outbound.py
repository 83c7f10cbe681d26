"""Where calls adesync makes to other servers may go.

:class:`GuardedTransport` resolves the host of each request itself, asks a refusal rule about
every address, and connects to the address it checked (TLS still verifies the name), so a name
that resolves elsewhere on the next lookup cannot slip past the check.
"""

from __future__ import annotations

import asyncio
import fnmatch
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

__all__ = [
    "APPLE_DEP_HOST",
    "AllowedHosts",
    "GuardedTransport",
    "IPAddress",
    "OutboundRefused",
    "Refusal",
    "dep_refusal",
    "literal_address",
    "probe_refusal",
]

APPLE_DEP_HOST = "mdmenrollment.apple.com"
_DEFAULT_PORTS = {"http": 80, "https": 443}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolve = Callable[[str, int], Awaitable[list[str]]]
Refusal = Callable[[str, int, IPAddress], str | None]
"""``(host, port, address) -> why not`` (``None`` allows the connection)."""


def _plain(address: IPAddress) -> IPAddress:
    """An IPv4-mapped IPv6 address as the IPv4 address it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def literal_address(host: str) -> IPAddress | None:
    """The address ``host`` spells, in any form the resolver takes (``0x7f000001``,
    ``2130706433``, ``127.1``, ``::1``), or ``None`` for a name."""
    try:
        return _plain(ipaddress.ip_address(host.strip("[]").split("%", 1)[0]))
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def _internal(address: IPAddress) -> bool:
    address = _plain(address)
    return not address.is_global or address.is_multicast


def _local_name(host: str) -> bool:
    host = host.lower().rstrip(".")
    return host == "localhost" or host.endswith(".localhost")


@dataclass(frozen=True)
class AllowedHosts:
    """``ADESYNC_ALLOWED_DEP_HOSTS``: ``host:port`` globs (``127.0.0.1:*``, ``[::1]:8443``,
    ``*.example.com:443``); a pattern without ``:port`` allows any port."""

    patterns: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> AllowedHosts:
        patterns = []
        for item in (text or "").split(","):
            item = item.strip().lower()
            if not item:
                continue
            host, _, port = item.rpartition(":") if not item.endswith("]") else (item, "", "")
            if not host or (":" in host and not host.startswith("[")):
                host, port = item, "*"
            patterns.append((host.strip("[]"), port or "*"))
        return cls(tuple(patterns))

    def matches(self, host: str, port: int) -> bool:
        host = host.lower()
        return any(
            fnmatch.fnmatchcase(host, h) and fnmatch.fnmatchcase(str(port), p)
            for h, p in self.patterns
        )

    def names(self, host: str, port: int) -> bool:
        """A pattern names ``host`` literally (no wildcard in its host part)."""
        host = host.lower()
        return any(
            h == host and fnmatch.fnmatchcase(str(port), p)
            for h, p in self.patterns
            if not any(c in h for c in "*?[")
        )


def dep_refusal(
    allowed: AllowedHosts, host: str, port: int, address: IPAddress | None
) -> str | None:
    """Why a token's Apple URL may not reach ``host:port`` (at ``address`` when resolved), or
    ``None``: Apple's host or an allowed one, never an internal address unless named."""
    if allowed.names(host, port):
        return None
    if not (host.lower() == APPLE_DEP_HOST and port == 443) and not allowed.matches(host, port):
        return f"{host}:{port} is not Apple's service nor in ADESYNC_ALLOWED_DEP_HOSTS"
    literal = literal_address(host)
    if _local_name(host) or (literal is not None and _internal(literal)):
        return f"{host} is a local address that ADESYNC_ALLOWED_DEP_HOSTS does not name"
    if address is not None and _internal(address):
        return (
            f"{host} resolves to an internal address that ADESYNC_ALLOWED_DEP_HOSTS does not name"
        )
    return None


def probe_refusal(host: str, port: int, address: IPAddress) -> str | None:
    """The enrollment-URL probe reaches no loopback, link-local or unspecified address
    (private ranges stay allowed: MDM servers are often on-premises)."""
    address = _plain(address)
    if address.is_loopback or address.is_link_local or address.is_unspecified:
        return f"{host} resolves to a loopback or link-local address"
    return None


class OutboundRefused(httpx.ConnectError):
    """The transport refused to connect (the message says why)."""


async def _resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return [str(info[4][0]) for info in infos]


class GuardedTransport(httpx.AsyncBaseTransport):
    """Resolves each request's host, refuses it when ``refusal`` objects to any address, and
    sends it to the first address (Host header and TLS name stay the URL's)."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        refusal: Refusal,
        *,
        resolve: Resolve = _resolve,
    ) -> None:
        self.inner = inner
        self.refusal = refusal
        self.resolve = resolve

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        host = url.host
        port = url.port or _DEFAULT_PORTS.get(url.scheme, 443)
        timeout = (request.extensions.get("timeout") or {}).get("connect")
        try:
            found = await asyncio.wait_for(self.resolve(host, port), timeout)
        except TimeoutError:
            raise httpx.ConnectTimeout(
                f"{host} was not resolved in time", request=request
            ) from None
        except OSError as exc:
            raise httpx.ConnectError(
                f"{host} could not be resolved: {exc}", request=request
            ) from None
        addresses = [ipaddress.ip_address(text.split("%", 1)[0]) for text in found]
        if not addresses:
            raise httpx.ConnectError(f"{host} resolves to no address", request=request)
        for address in addresses:
            reason = self.refusal(host, port, address)
            if reason is not None:
                raise OutboundRefused(f"adesync does not connect there: {reason}", request=request)
        extensions = dict(request.extensions)
        if url.scheme == "https" and literal_address(host) is None:
            extensions["sni_hostname"] = host
        # Each checked address in turn, as a resolver-driven connect would (IPv6 before IPv4).
        failure = httpx.ConnectError(f"{host} could not be reached", request=request)
        for address in dict.fromkeys(addresses):
            pinned = httpx.Request(
                request.method,
                url.copy_with(host=str(address)),
                headers=request.headers,
                stream=request.stream,
                extensions=extensions,
            )
            try:
                return await self.inner.handle_async_request(pinned)
            except httpx.ConnectError as exc:
                failure = exc
        raise failure

    async def aclose(self) -> None:
        await self.inner.aclose()
