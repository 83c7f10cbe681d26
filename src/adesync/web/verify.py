"""Apple's ``/account`` check for uploaded tokens: who the token belongs to, or one error."""

from __future__ import annotations

from adesync.apple import AppleError
from adesync.config import Settings
from adesync.errors import AdesyncError
from adesync.services.apple_account import account_identity
from adesync.services.tokens import AccountIdentity, Verify
from adesync.sync.clients import client_factory
from adesync.sync.model import OAuthValues
from adesync.tokens import TokenPayload

__all__ = ["account_verifier"]


class TokenRefused(AdesyncError):
    """Apple refused the uploaded token; ``code`` is the finding code."""


def account_verifier(settings: Settings) -> Verify:
    """A ``Verify`` that asks Apple's ``/account`` with the uploaded credentials."""
    make = client_factory(settings)

    async def verify(payload: TokenPayload, dep_url: str) -> AccountIdentity:
        values = OAuthValues(
            consumer_key=payload.consumer_key,
            consumer_secret=payload.consumer_secret,
            access_token=payload.access_token,
            access_secret=payload.access_secret,
        )
        async with make(dep_url, values) as client:
            try:
                account = await client.account()
            except AppleError as error:
                raise TokenRefused(
                    f"Apple refused this token, so nothing was stored: {error}".rstrip(".") + ".",
                    code=error.code,
                ) from None
        return account_identity(account, dep_url)

    return verify
