"""The HTTPS probe of the enrollment URLs of the profiles in use.

A device that downloaded its ADE profile fetches the profile's ``url`` next; if that fails,
it cannot enroll. adesync sends the same kind of request: a GET, 10 seconds at most, no
redirects followed, trusting the system's certificate store plus the profile's
``anchor_certs`` (base64 DER, as Apple takes them). A connection error, a timeout, a TLS error
or an HTTP 5xx answer fails the probe; any other answer (a 4xx to a bare GET included) shows
the server is there. Each URL (with its anchors) is probed at most once an hour.

The probe connects to no loopback or link-local address (private ranges stay allowed: MDM
servers are often on-premises), and what it stores and shows says only reachable, not
reachable or TLS problem: the details (which would map a network for anyone who reads them)
go to the log.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import logging
import os
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import delete, exists, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from adesync import __version__
from adesync.outbound import GuardedTransport, OutboundRefused, Refusal, probe_refusal
from adesync.store.database import Database
from adesync.store.tables import tokens
from adesync.store.tables_enrollment import enrollment_url_probes
from adesync.store.tables_sync import devices, profiles
from adesync.store.types import utcnow

__all__ = [
    "PROBE_INTERVAL",
    "PROBE_TIMEOUT_SECONDS",
    "ProbeResult",
    "ProfileInUse",
    "probe_key",
    "probe_profiles",
    "probe_url",
    "profiles_in_use",
    "shown_error",
    "stored_probes",
]

log = logging.getLogger("adesync.enrollment")

PROBE_TIMEOUT_SECONDS = 10.0
PROBE_INTERVAL = timedelta(hours=1)
PROBE_CONCURRENCY = 8
_ERROR_LENGTH = 255
_HEADERS = {"Accept": "*/*", "User-Agent": f"adesync/{__version__} (enrollment URL probe)"}


@dataclass(frozen=True)
class ProfileInUse:
    """A profile that is a token's default or that live devices have."""

    token_id: int
    profile_uuid: str
    profile_name: str
    url: str
    anchors: tuple[str, ...]

    @property
    def key(self) -> str:
        return probe_key(self.url, self.anchors)


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of one probe. ``error_kind`` is ``connect``, ``timeout``, ``tls``,
    ``http_5xx``, ``url`` or ``refused`` when it failed; ``error`` is what viewers may see
    (not reachable, or a TLS problem), ``detail`` what happened, for the log only."""

    ok: bool
    status_code: int | None = None
    error_kind: str | None = None
    error: str | None = None
    detail: str | None = None


NOT_REACHABLE = "The enrollment server is not reachable."
TLS_PROBLEM = "The enrollment server's TLS certificate or handshake has a problem."


def shown_error(error_kind: str | None) -> str:
    """What viewers see of a failed probe of ``error_kind`` (also for probes stored before)."""
    return TLS_PROBLEM if error_kind == "tls" else NOT_REACHABLE


def _public(result: ProbeResult) -> ProbeResult:
    """``result`` with its sentence moved to ``detail`` and the viewers' words in ``error``."""
    if result.ok:
        return result
    return replace(result, error=shown_error(result.error_kind), detail=result.error)


def probe_key(url: str, anchors: Sequence[str]) -> str:
    """Which stored probe answers for ``url`` trusted with ``anchors``."""
    text = "\n".join([url, *sorted(anchors)])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _anchors(definition: str) -> tuple[str, ...]:
    try:
        document: Any = json.loads(definition)
    except ValueError:
        return ()
    certs = document.get("anchor_certs") if isinstance(document, dict) else None
    if not isinstance(certs, list):
        return ()
    return tuple(cert for cert in certs if isinstance(cert, str) and cert)


async def profiles_in_use(
    session: AsyncSession, token_ids: Sequence[int] | None = None
) -> list[ProfileInUse]:
    """The profiles of ``token_ids`` (every token when ``None``) that a token has as its
    default or that a live device of the token has, by token and name."""
    has_devices = exists().where(
        devices.c.token_id == profiles.c.token_id,
        devices.c.profile_uuid == profiles.c.profile_uuid,
        devices.c.deleted.is_(False),
    )
    query = (
        select(
            profiles.c.token_id,
            profiles.c.profile_uuid,
            profiles.c.profile_name,
            profiles.c.url,
            profiles.c.definition,
        )
        .join(tokens, tokens.c.id == profiles.c.token_id)
        .where(or_(tokens.c.default_profile_uuid == profiles.c.profile_uuid, has_devices))
        .order_by(profiles.c.token_id, profiles.c.profile_name, profiles.c.profile_uuid)
    )
    if token_ids is not None:
        query = query.where(profiles.c.token_id.in_(list(token_ids)))
    rows = await session.execute(query)
    return [
        ProfileInUse(
            token_id=row.token_id,
            profile_uuid=row.profile_uuid,
            profile_name=row.profile_name,
            url=row.url,
            anchors=_anchors(row.definition),
        )
        for row in rows
    ]


def _tls_context(anchors: Sequence[str]) -> ssl.SSLContext:
    """The system's trust store plus the anchors; ValueError for an anchor that is no
    certificate."""
    context = ssl.create_default_context()
    for anchor in anchors:
        try:
            der = base64.b64decode(anchor, validate=True)
            context.load_verify_locations(cadata=der)
        except (binascii.Error, ssl.SSLError, ValueError):
            raise ValueError("an anchor certificate of the profile is not a certificate") from None
    return context


def _cause(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _why(exc: BaseException) -> str:
    """The operating system's words for the first error with an errno in the chain (the
    refusal under "All connection attempts failed"), else the exception's own."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno is not None:
            return os.strerror(seen.errno)
        seen = seen.__cause__ or seen.__context__
    return str(exc) or type(exc).__name__


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    if not text.endswith("."):
        text += "."
    return text[:1].upper() + text[1 : _ERROR_LENGTH - 1]


def _transport_failure(exc: httpx.TransportError, timeout: float) -> ProbeResult:
    if isinstance(exc, httpx.TimeoutException):
        return ProbeResult(False, None, "timeout", f"No answer within {timeout:g} seconds.")
    verify = _cause(exc, ssl.SSLCertVerificationError)
    if isinstance(verify, ssl.SSLCertVerificationError):
        reason = verify.verify_message or verify.reason or "not trusted"
        return ProbeResult(False, None, "tls", _sentence(f"TLS certificate not trusted: {reason}"))
    tls = _cause(exc, ssl.SSLError)
    if isinstance(tls, ssl.SSLError):
        return ProbeResult(False, None, "tls", _sentence(f"TLS failed: {tls.reason or tls}"))
    if isinstance(exc, OutboundRefused):
        return ProbeResult(False, None, "refused", _sentence(str(exc)))
    return ProbeResult(False, None, "connect", _sentence(f"Connection failed: {_why(exc)}"))


async def probe_url(
    url: str,
    anchors: Sequence[str] = (),
    *,
    timeout_seconds: float = PROBE_TIMEOUT_SECONDS,
    transport: httpx.AsyncBaseTransport | None = None,
    refusal: Refusal = probe_refusal,
) -> ProbeResult:
    """GET ``url`` once as a device would (see the module doc); never raises for the URL's
    sake. ``refusal`` says which addresses it may not connect to (tests of servers on
    127.0.0.1 pass a rule that allows them)."""
    result = await _probe(url, anchors, timeout_seconds, transport, refusal)
    return _public(result)


async def _probe(
    url: str,
    anchors: Sequence[str],
    timeout_seconds: float,
    transport: httpx.AsyncBaseTransport | None,
    refusal: Refusal,
) -> ProbeResult:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return ProbeResult(False, None, "url", "The enrollment URL is not a valid URL.")
    if parsed.scheme not in ("https", "http") or not parsed.host:
        return ProbeResult(False, None, "url", "The enrollment URL is not an https:// URL.")
    try:
        context = _tls_context(anchors)
    except ValueError as exc:
        return ProbeResult(False, None, "tls", _sentence(str(exc)))
    inner = transport or httpx.AsyncHTTPTransport(verify=context)
    try:
        async with (
            asyncio.timeout(timeout_seconds),
            httpx.AsyncClient(
                verify=context,
                timeout=httpx.Timeout(timeout_seconds),
                follow_redirects=False,
                transport=GuardedTransport(inner, refusal),
            ) as client,
            client.stream("GET", parsed, headers=_HEADERS) as response,
        ):
            status = response.status_code
    except TimeoutError:
        return ProbeResult(False, None, "timeout", f"No answer within {timeout_seconds:g} seconds.")
    except httpx.TransportError as exc:
        return _transport_failure(exc, timeout_seconds)
    if status >= 500:
        return ProbeResult(False, status, "http_5xx", f"The server answered HTTP {status}.")
    return ProbeResult(True, status)


async def stored_probes(session: AsyncSession, keys: Sequence[str]) -> dict[str, Any]:
    """The stored probe rows of ``keys``, by key."""
    if not keys:
        return {}
    rows = await session.execute(
        select(enrollment_url_probes).where(enrollment_url_probes.c.probe_key.in_(list(keys)))
    )
    return {row.probe_key: row for row in rows}


async def _store(
    db: Database,
    session: AsyncSession,
    key: str,
    url: str,
    result: ProbeResult,
    failing_since: datetime | None,
    at: datetime,
) -> None:
    values = {
        "probe_key": key,
        "url": url,
        "probed_at": at,
        "ok": result.ok,
        "status_code": result.status_code,
        "error_kind": result.error_kind,
        "error": None if result.error is None else result.error[:_ERROR_LENGTH],
        "failing_since": None if result.ok else failing_since or at,
    }
    insert = postgresql.insert if db.is_postgresql else sqlite.insert
    statement = insert(enrollment_url_probes).values(values)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[enrollment_url_probes.c.probe_key],
            set_={name: statement.excluded[name] for name in values if name != "probe_key"},
        )
    )


async def probe_profiles(
    db: Database,
    *,
    now: datetime | None = None,
    timeout_seconds: float = PROBE_TIMEOUT_SECONDS,
    interval: timedelta = PROBE_INTERVAL,
    concurrency: int = PROBE_CONCURRENCY,
    transport: httpx.AsyncBaseTransport | None = None,
    refusal: Refusal = probe_refusal,
) -> dict[str, ProbeResult]:
    """Probe each enrollment URL in use whose last probe is older than ``interval``; store
    the results and forget probes of URLs no longer in use. Returns the new results by URL."""
    now = now or utcnow()
    async with db.read() as session:
        in_use = await profiles_in_use(session)
        targets = {profile.key: profile for profile in in_use}
        stored = await stored_probes(session, list(targets))
    due = {
        key: profile
        for key, profile in targets.items()
        if key not in stored or stored[key].probed_at <= now - interval
    }
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(profile: ProfileInUse) -> ProbeResult:
        async with gate:
            result = await probe_url(
                profile.url,
                profile.anchors,
                timeout_seconds=timeout_seconds,
                transport=transport,
                refusal=refusal,
            )
        if not result.ok:
            log.warning(
                "enrollment URL probe of %s failed: %s",
                profile.url,
                result.detail,
                extra={"event": "enrollment.probe_failed", "kind": result.error_kind},
            )
        return result

    results = await asyncio.gather(*(one(profile) for profile in due.values()))
    async with db.write() as session:
        for (key, profile), result in zip(due.items(), results, strict=True):
            previous = stored.get(key)
            since = previous.failing_since if previous is not None else None
            await _store(db, session, key, profile.url, result, since, now)
        await session.execute(
            delete(enrollment_url_probes).where(
                enrollment_url_probes.c.probe_key.not_in(list(targets) or [""])
            )
        )
    return {profile.url: result for profile, result in zip(due.values(), results, strict=True)}
