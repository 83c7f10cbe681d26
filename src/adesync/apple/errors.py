"""Every way Apple's ADE service can refuse a call, decided in one place (:func:`classify`).

Apple's error bodies are plain-text reason codes (``T_C_NOT_SIGNED``), sometimes wrapped in double
quotes (Apple's simulator), occasionally a JSON object with a ``code`` member or an OAuth
``oauth_problem=...`` form. Codes are matched as substrings after stripping quotes and whitespace,
so every variant lands on the same client code.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import ClassVar, Protocol

__all__ = [
    "CLIENT_CODES",
    "CLOCK_SKEW_LIMIT_SECONDS",
    "AccessDenied",
    "AppleError",
    "AppleThrottled",
    "AppleUnavailable",
    "ClockSkew",
    "CursorExhausted",
    "CursorExpired",
    "CursorInvalid",
    "CursorRequired",
    "MalformedRequest",
    "ProfileInvalid",
    "ProfileNotFound",
    "SessionInvalid",
    "TermsNotAccepted",
    "TokenRejected",
    "Unexpected",
    "UserAgentRejected",
    "classify",
    "error_for_code",
    "reason_code",
]

BODY_LIMIT = 1024
# Apple rejects OAuth timestamps this far from its own clock; beyond it a 401 is the clock's fault.
CLOCK_SKEW_LIMIT_SECONDS = 300.0
SESSION_PATH = "/session"
PROFILE_PATHS = frozenset({"/profile", "/profile/devices"})

PROFILE_FIELD_CODES = frozenset(
    {
        "CONFIG_NAME_INVALID",
        "CONFIG_URL_INVALID",
        "SUPPORT_PHONE_INVALID",
        "SUPPORT_EMAIL_INVALID",
        "DEPARTMENT_INVALID",
        "MAGIC_INVALID",
        "FLAGS_INVALID",
        "LOCALE_INVALID",
    }
)
CURSOR_CODES = {
    "EXPIRED_CURSOR": "cursor_expired",
    "INVALID_CURSOR": "cursor_invalid",
    "EXHAUSTED_CURSOR": "cursor_exhausted",
    "CURSOR_REQUIRED": "cursor_required",
}
MALFORMED_CODES = ("MALFORMED_REQUEST_BODY", "DEVICE_ID_REQUIRED", "PROFILE_UUID_REQUIRED")
_REQUIRED = re.compile(r"\b([A-Z][A-Z0-9_]*_REQUIRED)\b")
_QUOTES_AND_SPACE = " \t\r\n\"'"


class AppleError(Exception):
    """A call to Apple's ADE service failed; ``code`` says how, in the findings vocabulary.

    Attributes a caller may rely on: ``code`` (one of :data:`CLIENT_CODES`), ``status`` (the HTTP
    status, ``None`` when no answer came), ``body`` (Apple's answer, at most 1 KiB), ``endpoint``
    (the path called, e.g. ``/session``), ``retry_at`` (``apple_throttled``: when Apple said to
    come back, aware UTC, or ``None`` if it did not say), ``field`` (``profile_invalid``: Apple's
    code such as ``CONFIG_NAME_INVALID``). ``str(error)`` is one sentence for an administrator.
    """

    code: ClassVar[str] = "unexpected"
    summary: ClassVar[str] = "Apple's ADE service gave an answer adesync does not understand"

    def __init__(
        self,
        *,
        endpoint: str,
        status: int | None = None,
        body: str = "",
        detail: str | None = None,
        retry_at: datetime | None = None,
        field: str | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.status = status
        self.body = body[:BODY_LIMIT]
        self.detail = detail
        self.retry_at = retry_at
        self.field = field
        super().__init__(self._sentence())

    def _sentence(self) -> str:
        answer = _describe_answer(self.status, self.body, self.detail)
        return f"{self.summary} ({self.endpoint}: {answer})."

    def __reduce__(self) -> tuple[object, ...]:  # keep errors picklable for worker processes
        return (_rebuild, (type(self), self.__dict__.copy()))


def _rebuild(cls: type[AppleError], state: dict[str, object]) -> AppleError:
    error = cls.__new__(cls)
    error.__dict__.update(state)
    Exception.__init__(error, error._sentence())
    return error


def _describe_answer(status: int | None, body: str, detail: str | None) -> str:
    parts: list[str] = []
    if status is not None:
        parts.append(f"HTTP {status}")
    text = " ".join(body.split())
    if text:
        parts.append(text if len(text) <= 120 else text[:117] + "...")
    if detail:
        parts.append(detail)
    return ", ".join(parts) if parts else "no answer"


class TermsNotAccepted(AppleError):
    code = "terms_not_accepted"
    summary = (
        "Apple refused the call because the organisation has not accepted the latest Apple "
        "Business/School Manager terms; an administrator must sign in there and accept them"
    )


class TokenRejected(AppleError):
    code = "token_rejected"
    summary = (
        "Apple rejected the server token: it was revoked or a newer token was downloaded in "
        "Apple Business/School Manager, so upload the most recent token"
    )


class ClockSkew(AppleError):
    code = "clock_skew"
    summary = (
        "Apple rejected the sign-in because this machine's clock is more than five minutes off "
        "Apple's; fix time synchronisation (NTP) and try again"
    )


class AccessDenied(AppleError):
    code = "access_denied"
    summary = (
        "Apple denied access: the MDM server for this token was removed from Apple "
        "Business/School Manager or lost access"
    )


class SessionInvalid(AppleError):
    code = "session_invalid"
    summary = "Apple refused the session it had just issued for this token"


class UserAgentRejected(AppleError):
    code = "user_agent_rejected"
    summary = "Apple rejected the User-Agent header; restore adesync's default User-Agent"


class AppleThrottled(AppleError):
    code = "apple_throttled"
    summary = "Apple asked adesync to slow down"

    def _sentence(self) -> str:
        answer = _describe_answer(self.status, self.body, self.detail)
        when = (
            f"; try again after {self.retry_at.strftime('%Y-%m-%d %H:%M:%S')} UTC"
            if self.retry_at is not None
            else ""
        )
        return f"{self.summary} ({self.endpoint}: {answer}){when}."


class AppleUnavailable(AppleError):
    code = "apple_unavailable"
    summary = "Apple's ADE service could not be reached or answered with a server error"


class CursorExpired(AppleError):
    code = "cursor_expired"
    summary = "Apple says the sync cursor is older than seven days; a full fetch is needed"


class CursorInvalid(AppleError):
    code = "cursor_invalid"
    summary = "Apple does not recognise the sync cursor; a full fetch is needed"


class CursorExhausted(AppleError):
    code = "cursor_exhausted"
    summary = "Apple says this fetch cursor already returned every device; sync from it instead"


class CursorRequired(AppleError):
    code = "cursor_required"
    summary = "Apple needs a cursor for a device sync; run a full fetch first"


class ProfileInvalid(AppleError):
    code = "profile_invalid"
    summary = "Apple rejected the enrollment profile"

    def _sentence(self) -> str:
        answer = _describe_answer(self.status, self.body, self.detail)
        what = f" ({self.field})" if self.field else ""
        return f"{self.summary}{what}; edit the profile ({self.endpoint}: {answer})."


class ProfileNotFound(AppleError):
    code = "profile_not_found"
    summary = "Apple does not know this enrollment profile; define it again and reassign devices"


class MalformedRequest(AppleError):
    code = "malformed_request"
    summary = "Apple rejected a request adesync built (a defect in adesync, please report it)"


class Unexpected(AppleError):
    code = "unexpected"


_BY_CODE: dict[str, type[AppleError]] = {
    cls.code: cls
    for cls in (
        TermsNotAccepted,
        TokenRejected,
        ClockSkew,
        AccessDenied,
        SessionInvalid,
        UserAgentRejected,
        AppleThrottled,
        AppleUnavailable,
        CursorExpired,
        CursorInvalid,
        CursorExhausted,
        CursorRequired,
        ProfileInvalid,
        ProfileNotFound,
        MalformedRequest,
        Unexpected,
    )
}
CLIENT_CODES: frozenset[str] = frozenset(_BY_CODE)


def error_for_code(code: str) -> type[AppleError]:
    """The exception class raised for a client code (``KeyError`` for an unknown one)."""
    return _BY_CODE[code]


def decode_body(content: bytes) -> str:
    """Apple's answer as text for humans and logs, truncated to 1 KiB."""
    return content[: BODY_LIMIT * 4].decode("utf-8", errors="replace")[:BODY_LIMIT]


def reason_code(body: str) -> str:
    """Apple's reason code from an error body: quotes and whitespace stripped, JSON ``code`` read.

    ``'"INVALID_CURSOR"\\n'`` → ``INVALID_CURSOR``; ``'{"code": "T_C_NOT_SIGNED"}'`` →
    ``T_C_NOT_SIGNED``; anything else comes back stripped, for substring matching.
    """
    text = body.strip(_QUOTES_AND_SPACE)
    if text.startswith("{"):
        try:
            document = json.loads(text)
        except ValueError:
            return text
        if isinstance(document, dict):
            for key in ("code", "error", "message"):
                value = document.get(key)
                if isinstance(value, str):
                    return value.strip(_QUOTES_AND_SPACE)
    return text


class _Maker(Protocol):
    def __call__(self, cls: type[AppleError], field: str | None = None) -> AppleError: ...


def classify(
    *,
    endpoint: str,
    status: int,
    body: str,
    retry_at: datetime | None = None,
    clock_skew_seconds: float | None = None,
    after_relogin: bool = False,
) -> AppleError:
    """Turn one non-success answer from Apple into the error the client raises.

    ``endpoint`` is the path called; ``retry_at`` the parsed ``Retry-After`` (if any);
    ``clock_skew_seconds`` local clock minus Apple's ``Date`` (``/session`` 401s only);
    ``after_relogin`` is true when this answer came to a request replayed with a fresh session.
    """
    code = reason_code(body)
    upper = code.upper()
    lower = code.lower()

    def make(cls: type[AppleError], field: str | None = None) -> AppleError:
        return cls(endpoint=endpoint, status=status, body=body, retry_at=retry_at, field=field)

    # Fleet saw these OAuth problems when a token was revoked or superseded, on 401 and 403 alike.
    if "token_rejected" in lower or "signature_invalid" in lower:
        return make(TokenRejected)
    if status == 401:
        if endpoint == SESSION_PATH:
            if (
                clock_skew_seconds is not None
                and abs(clock_skew_seconds) > CLOCK_SKEW_LIMIT_SECONDS
            ):
                return ClockSkew(
                    endpoint=endpoint,
                    status=status,
                    body=body,
                    detail=f"local clock is {clock_skew_seconds:+.0f} s off Apple's Date header",
                )
            return make(TokenRejected)
        return make(TokenRejected if after_relogin else SessionInvalid)
    if status == 403:
        if "T_C_NOT_SIGNED" in upper:
            return make(TermsNotAccepted)
        if "ACCESS_DENIED" in upper:
            return make(AccessDenied)
        if "FORBIDDEN" in upper:
            return make(TokenRejected if endpoint == SESSION_PATH else SessionInvalid)
        return make(Unexpected)
    if status == 429:
        return make(AppleThrottled)
    if status >= 500:
        if status == 503 and retry_at is not None:
            return make(AppleThrottled)
        return make(AppleUnavailable)
    if status == 404 and endpoint in PROFILE_PATHS:
        return make(ProfileNotFound)
    if status == 400:
        return _classify_bad_request(endpoint, upper, make)
    return make(Unexpected)


def _classify_bad_request(endpoint: str, upper: str, make: _Maker) -> AppleError:
    if "USER_AGENT_" in upper:
        return make(UserAgentRejected)
    for apple_code, client_code in CURSOR_CODES.items():
        if apple_code in upper:
            return make(_BY_CODE[client_code])
    for apple_code in MALFORMED_CODES:
        if apple_code in upper:
            return make(MalformedRequest)
    for apple_code in PROFILE_FIELD_CODES:
        if apple_code in upper:
            return make(ProfileInvalid, apple_code)
    required = _REQUIRED.search(upper)
    if required is not None:
        return make(ProfileInvalid, required.group(1))
    # Apple's simulator answers an unknown profile with a 400 (`bad_request_profile_not_found`).
    if endpoint in PROFILE_PATHS and "NOT_FOUND" in upper:
        return make(ProfileNotFound)
    return make(Unexpected)
