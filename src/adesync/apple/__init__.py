"""A client for Apple's Automated Device Enrollment (ADE/DEP) web service.

It takes a server token's four OAuth values and a base URL and talks to Apple and nothing else:
no database, no settings. Every failure is an :class:`AppleError` whose ``code`` is one of a
closed set (``terms_not_accepted``, ``token_rejected``, ``apple_throttled``, ...). This package
imports nothing else from adesync, so MDM developers can use it on its own.
"""

from adesync.apple.auth import OAuthCredentials, SessionCache
from adesync.apple.client import (
    DEFAULT_BASE_URL,
    DEFAULT_PROTOCOL_VERSION,
    AnswerObserver,
    AppleClient,
    DevicePager,
)
from adesync.apple.errors import (
    CLIENT_CODES,
    AccessDenied,
    AppleError,
    AppleThrottled,
    AppleUnavailable,
    ClockSkew,
    CursorExhausted,
    CursorExpired,
    CursorInvalid,
    CursorRequired,
    MalformedRequest,
    ProfileInvalid,
    ProfileNotFound,
    SessionInvalid,
    TermsNotAccepted,
    TokenRejected,
    Unexpected,
    UserAgentRejected,
)
from adesync.apple.models import (
    AccountDetail,
    AccountURL,
    ActivationLockResponse,
    AssignProfileResponse,
    DefineProfileResponse,
    Device,
    DeviceDetailsResponse,
    DevicePage,
    DeviceStatusResponse,
    Profile,
)

__all__ = [
    "CLIENT_CODES",
    "DEFAULT_BASE_URL",
    "DEFAULT_PROTOCOL_VERSION",
    "AccessDenied",
    "AccountDetail",
    "AccountURL",
    "ActivationLockResponse",
    "AnswerObserver",
    "AppleClient",
    "AppleError",
    "AppleThrottled",
    "AppleUnavailable",
    "AssignProfileResponse",
    "ClockSkew",
    "CursorExhausted",
    "CursorExpired",
    "CursorInvalid",
    "CursorRequired",
    "DefineProfileResponse",
    "Device",
    "DeviceDetailsResponse",
    "DevicePage",
    "DevicePager",
    "DeviceStatusResponse",
    "MalformedRequest",
    "OAuthCredentials",
    "Profile",
    "ProfileInvalid",
    "ProfileNotFound",
    "SessionCache",
    "SessionInvalid",
    "TermsNotAccepted",
    "TokenRejected",
    "Unexpected",
    "UserAgentRejected",
]
