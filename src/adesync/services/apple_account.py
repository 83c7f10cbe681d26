"""Asking Apple who a server token belongs to (``GET /account``), for ``tokens add``/``renew``.

:func:`make_verifier` builds the ``verify`` callable the token service takes. It signs in with
the token's OAuth values, reads the MDM server and organisation, and turns every way Apple can
refuse into an :class:`AppleCheckFailed` whose ``code`` is the client code (the findings
vocabulary) and whose message is one sentence saying what to do. When it raises, the token
service stores nothing.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import httpx

from adesync.apple import AccountDetail, AppleClient, AppleError, OAuthCredentials, SessionCache
from adesync.apple.client import default_transport
from adesync.apple.retry import Sleep
from adesync.config import Settings, load_settings
from adesync.errors import AdesyncError
from adesync.outbound import AllowedHosts, GuardedTransport, dep_refusal
from adesync.redact import redact_url
from adesync.services.tokens import AccountIdentity, Verify
from adesync.sync.hooks import apple_answered
from adesync.tokens import TokenPayload

__all__ = ["AppleCheckFailed", "account_identity", "check_failed", "make_verifier"]

log = logging.getLogger("adesync.apple")

# The /account check answers a person waiting at the keyboard: a short throttle wait at most.
CHECK_MAX_RETRY_AFTER = 30.0

# How the web API answers each refusal: the token itself is unusable (422), or Apple is (503).
_HTTP_STATUS = {"apple_throttled": 503, "apple_unavailable": 503}


class AppleCheckFailed(AdesyncError):
    """Apple refused the token or could not be asked; ``code`` is the ``adesync.apple`` code,
    ``status``/``body`` Apple's answer (``None``/empty when none came)."""

    code = "apple_check_failed"
    http_status = 422

    def __init__(self, message: str, *, error: AppleError, dep_url: str | None = None) -> None:
        super().__init__(
            message,
            code=error.code,
            data={"apple_code": error.code, "dep_url": dep_url, "retry_at": error.retry_at},
        )
        self.http_status = _HTTP_STATUS.get(error.code, 422)
        self.status = error.status
        self.body = error.body
        self.retry_at = error.retry_at


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "a while"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _answer(error: AppleError, dep_url: str) -> str:
    """The status and adesync's own words; the body of an unexpected answer (which may be
    whatever an internal server said) goes to the log for operators, never to a caller."""
    parts = [f"HTTP {error.status}"] if error.status is not None else []
    body = " ".join(error.body.split())
    if body:
        log.warning(
            "unexpected answer from %s: HTTP %s %s",
            redact_url(dep_url),
            error.status,
            body[:500],
            extra={"event": "apple.unexpected_answer", "status": error.status},
        )
    if error.detail:
        parts.append(error.detail)
    return ", ".join(parts) if parts else "no answer"


def check_failed(error: AppleError, dep_url: str) -> AppleCheckFailed:
    """The one-sentence message, for every door, of an Apple refusal of a token being added,
    renewed or checked."""
    code = error.code
    dep_url = redact_url(dep_url)
    if code == "terms_not_accepted":
        text = (
            "Apple refused this token because the organisation has not accepted the latest "
            "Apple Business/School Manager terms; an administrator must sign in there, accept "
            "them, and then try again."
        )
    elif code == "token_rejected":
        text = (
            "Apple rejected this token: it was revoked or a newer token was downloaded for the "
            "same MDM server since, so download the most recent token from ABM/ASM and use that."
        )
    elif code == "clock_skew":
        text = (
            "Apple rejected the sign-in because this machine's clock is more than five minutes "
            f"off Apple's ({error.detail or 'see the Date header'}); fix time synchronisation "
            "(NTP) and try again."
        )
    elif code == "access_denied":
        text = (
            "Apple denied access for this token: its MDM server was removed from ABM/ASM or lost "
            "access, so check that the server still exists and download a new token if needed."
        )
    elif code == "user_agent_rejected":
        text = (
            "Apple rejected adesync's User-Agent header; unset ADESYNC_USER_AGENT (or set a "
            "distinctive product/version) and try again."
        )
    elif code == "apple_throttled":
        text = (
            f"Apple asked adesync to wait until {_when(error.retry_at)} before calling again; "
            "try again after that."
        )
    elif code == "apple_unavailable":
        text = (
            f"Could not reach Apple's ADE service at {dep_url} ({_answer(error, dep_url)}); "
            "check the network and the token's Apple service URL, then try again."
        )
    elif code == "session_invalid":
        text = (
            "Apple refused the session it had just issued for this token; try again, and if it "
            "keeps happening download the most recent token from ABM/ASM."
        )
    else:
        text = (
            f"Apple's ADE service at {dep_url} gave an unexpected answer to the account check "
            f"({_answer(error, dep_url)}); check that the token's Apple service URL points at "
            "Apple's service."
        )
    return AppleCheckFailed(text, error=error, dep_url=dep_url)


def account_identity(account: AccountDetail, dep_url: str) -> AccountIdentity:
    """What the token service stores about the MDM server from Apple's ``/account`` answer."""
    if not account.server_uuid:
        raise AppleCheckFailed(
            f"Apple's ADE service at {dep_url} answered the account check without a server_uuid, "
            "so adesync cannot tell which MDM server this token belongs to.",
            error=AppleError(endpoint="/account", status=200, detail="no server_uuid"),
        )
    return AccountIdentity(
        server_uuid=account.server_uuid,
        server_name=account.server_name,
        org_name=account.org_name,
        org_email=account.org_email,
        org_phone=account.org_phone,
        org_address=account.org_address,
        org_id=account.org_id,
        org_id_hash=account.org_id_hash,
        org_type=account.org_type,
        org_version=account.org_version,
        admin_id=account.admin,
    )


def guarded(
    transport: httpx.AsyncBaseTransport | None, policy: AllowedHosts
) -> httpx.AsyncBaseTransport:
    """``transport`` (adesync.apple's default when None) behind the outbound ``policy``."""
    return GuardedTransport(
        transport if transport is not None else default_transport(),
        lambda host, port, address: dep_refusal(policy, host, port, address),
    )


def make_verifier(
    settings: Settings | None = None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    session_cache: SessionCache | None = None,
    sleep: Sleep | None = None,
    policy: AllowedHosts | None = None,
) -> Verify:
    """The ``verify`` callable for ``add_token``/``renew_token``: Apple's ``/account`` check.

    User-Agent and protocol version come from ``settings`` (read from the environment when
    omitted); a ``Retry-After`` longer than 30 s is not waited for but reported. ``transport``,
    ``session_cache`` and ``sleep`` go to the client (tests). With a ``policy`` (a token whose
    URL came through the API or the console), each connection goes only to an address the
    policy allows (see :func:`adesync.outbound.dep_refusal`).
    """
    checked = guarded(transport, policy) if policy is not None else transport

    async def verify(payload: TokenPayload, dep_url: str) -> AccountIdentity:
        config = settings if settings is not None else load_settings()
        credentials = OAuthCredentials(
            consumer_key=payload.consumer_key,
            consumer_secret=payload.consumer_secret,
            access_token=payload.access_token,
            access_secret=payload.access_secret,
        )
        try:
            async with AppleClient(
                credentials,
                base_url=dep_url,
                user_agent=config.user_agent,
                protocol_version=config.protocol_version,
                max_retry_after=min(config.max_retry_after_seconds, CHECK_MAX_RETRY_AFTER),
                transport=checked,
                session_cache=session_cache,
                sleep=sleep,
                on_answer=apple_answered,
            ) as client:
                account = await client.account()
        except AppleError as error:
            raise check_failed(error, dep_url) from None
        return account_identity(account, dep_url)

    return verify
