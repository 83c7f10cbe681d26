"""Verifying the OAuth 1.0a (HMAC-SHA1) signature of a ``GET /session`` request.

The simulator verifies signatures itself, independently of any client code, so a client that
signs the wrong URL, forgets a parameter or reuses a nonce is caught. Refusals use the OAuth
Problem Reporting vocabulary (``signature_invalid``, ``nonce_used``, ...) that Apple's
``token_rejected`` / ``signature_invalid`` bodies come from.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections import deque
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote
from urllib.request import parse_http_list

from oauthlib.oauth1.rfc5849 import signature, utils

from adesync.simulator.answers import ServiceError

__all__ = ["TIMESTAMP_WINDOW", "NonceCache", "OAuthParams", "parse_oauth", "signature_matches"]

TIMESTAMP_WINDOW = 300  # seconds either side of the service's clock
_REQUIRED = (
    "oauth_consumer_key",
    "oauth_token",
    "oauth_signature_method",
    "oauth_signature",
    "oauth_timestamp",
    "oauth_nonce",
)


@dataclass(frozen=True, slots=True)
class OAuthParams:
    """The protocol parameters of one request, plus every parameter that is signed."""

    consumer_key: str
    token: str
    signature: str
    timestamp: int
    nonce: str
    signed: list[tuple[str, str]]


def _header_params(authorization: str) -> list[tuple[str, str]]:
    scheme, _, rest = authorization.strip().partition(" ")
    if scheme.lower() != "oauth":
        raise ServiceError(400, "parameter_absent")
    pairs: list[tuple[str, str]] = []
    for item in parse_http_list(rest):
        name, sep, value = item.strip().partition("=")
        if not sep:
            raise ServiceError(400, "parameter_rejected")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        pairs.append((name.strip(), unquote(value)))
    return pairs


def parse_oauth(query: str, authorization: str | None) -> OAuthParams:
    """Collect the OAuth parameters (header and query); ``ServiceError`` 400 when malformed.

    ``realm`` is optional and, as RFC 5849 says, not signed.
    """
    header = _header_params(authorization) if authorization else []
    query_pairs = parse_qsl(query, keep_blank_values=True)
    every = [*header, *query_pairs]
    protocol = [name for name, _ in every if name.startswith("oauth_")]
    if len(protocol) != len(set(protocol)):
        raise ServiceError(400, "parameter_rejected")
    values = dict(every)
    if any(not values.get(name) for name in _REQUIRED):
        raise ServiceError(400, "parameter_absent")
    if values["oauth_signature_method"] != "HMAC-SHA1":
        raise ServiceError(400, "signature_method_rejected")
    if values.get("oauth_version", "1.0") != "1.0":
        raise ServiceError(400, "version_rejected")
    try:
        timestamp = int(values["oauth_timestamp"])
    except ValueError:
        raise ServiceError(400, "parameter_rejected") from None
    signed = [(k, v) for k, v in every if k not in ("realm", "oauth_signature")]
    return OAuthParams(
        consumer_key=values["oauth_consumer_key"],
        token=values["oauth_token"],
        signature=values["oauth_signature"],
        timestamp=timestamp,
        nonce=values["oauth_nonce"],
        signed=signed,
    )


def signature_matches(
    params: OAuthParams, method: str, url: str, consumer_secret: str, access_secret: str
) -> bool:
    """Whether ``params.signature`` is the HMAC-SHA1 of this request under the two secrets."""
    base = signature.signature_base_string(
        method, signature.base_string_uri(url), signature.normalize_parameters(params.signed)
    )
    key = f"{utils.escape(consumer_secret)}&{utils.escape(access_secret)}".encode()
    expected = base64.b64encode(hmac.new(key, base.encode(), hashlib.sha1).digest()).decode()
    return hmac.compare_digest(expected, params.signature)


class NonceCache:
    """Nonces seen within the timestamp window; older ones are forgotten (bounded memory)."""

    def __init__(self) -> None:
        self._seen: set[tuple[str, str, str, int]] = set()
        self._order: deque[tuple[float, tuple[str, str, str, int]]] = deque()

    def __len__(self) -> int:
        return len(self._seen)

    def use(self, params: OAuthParams, now: float) -> bool:
        """Record the nonce; ``False`` if the same nonce and timestamp were already used."""
        while self._order and self._order[0][0] < now:
            self._seen.discard(self._order.popleft()[1])
        key = (params.consumer_key, params.token, params.nonce, params.timestamp)
        if key in self._seen:
            return False
        self._seen.add(key)
        self._order.append((now + 2 * TIMESTAMP_WINDOW, key))
        return True
