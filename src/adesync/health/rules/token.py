"""Rules about the token itself: its expiry, its certificate and who it belongs to."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache

from cryptography import x509
from sqlalchemy import func, select

from adesync.health.catalogue import Severity
from adesync.health.model import Finding, rule, stamp
from adesync.health.rules.context import RuleContext
from adesync.store.tables import tokens

__all__ = [
    "CONSUMER_MAIL_DOMAINS",
    "certificate_expiring",
    "duplicate_server",
    "personal_apple_id",
    "token_expired",
    "token_expiring",
]

DAY = 86_400.0

# Mail domains of consumer Apple Accounts (Apple's own and the large free providers, including
# the ones common in mainland China, where zh-CN admins work).
CONSUMER_MAIL_DOMAINS = frozenset(
    {
        "icloud.com",
        "me.com",
        "mac.com",
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "hotmail.com",
        "live.com",
        "msn.com",
        "yahoo.com",
        "ymail.com",
        "aol.com",
        "gmx.de",
        "gmx.net",
        "web.de",
        "proton.me",
        "protonmail.com",
        "qq.com",
        "foxmail.com",
        "163.com",
        "126.com",
        "yeah.net",
        "sina.com",
        "sohu.com",
        "aliyun.com",
    }
)


def _days_left(until: datetime, now: datetime) -> int:
    return int((until - now).total_seconds() // DAY)


def _days_variant(days_left: int) -> str | None:
    if days_left <= 0:
        return "today"
    if days_left == 1:
        return "one"
    return None


@rule("token_expired", Severity.ERROR, params=("expired_at",))
async def token_expired(ctx: RuleContext) -> list[Finding]:
    """The token's ``access_token_expiry`` is past: Apple refuses it."""
    return [
        ctx.finding(token, expired_at=stamp(token.access_token_expiry))
        for token in ctx.tokens
        if token.access_token_expiry is not None and token.access_token_expiry <= ctx.now
    ]


@rule(
    "token_expiring",
    Severity.WARNING,
    params=("expires_at", "days_left"),
    variants=("one", "today"),
)
async def token_expiring(ctx: RuleContext) -> list[Finding]:
    """The token expires within ``expiry_warning_days`` (30 by default)."""
    found = []
    for token in ctx.tokens:
        expiry = token.access_token_expiry
        if expiry is None or expiry <= ctx.now:
            continue
        if expiry - ctx.now <= timedelta(days=ctx.limits.expiry_warning_days):
            days_left = _days_left(expiry, ctx.now)
            found.append(
                ctx.finding(
                    token,
                    variant=_days_variant(days_left),
                    expires_at=stamp(expiry),
                    days_left=days_left,
                )
            )
    return found


@rule("duplicate_server", Severity.ERROR, params=("server_uuid", "others"))
async def duplicate_server(ctx: RuleContext) -> list[Finding]:
    """Two or more tokens hold the same MDM server (``server_uuid``)."""
    shared = (
        select(tokens.c.server_uuid)
        .where(tokens.c.oauth_credentials.is_not(None), tokens.c.server_uuid.is_not(None))
        .group_by(tokens.c.server_uuid)
        .having(func.count() > 1)
    )
    rows = await ctx.session.execute(
        select(tokens.c.id, tokens.c.name, tokens.c.server_uuid)
        .where(tokens.c.oauth_credentials.is_not(None), tokens.c.server_uuid.in_(shared))
        .order_by(tokens.c.name)
    )
    holders: dict[str, list[tuple[int, str]]] = {}
    for token_id, name, server_uuid in rows:
        holders.setdefault(server_uuid, []).append((token_id, name))
    found = []
    for token in ctx.tokens:
        if token.server_uuid is None or token.server_uuid not in holders:
            continue
        group = holders[token.server_uuid]
        others = ", ".join(name for token_id, name in group if token_id != token.id)
        found.append(
            ctx.finding(token, count=len(group), server_uuid=token.server_uuid, others=others)
        )
    return found


@lru_cache(maxsize=4096)
def certificate_expiry(pem: str) -> datetime | None:
    """The latest ``notAfter`` among the PEM certificates in ``pem`` (``None`` if none parse)."""
    try:
        certificates = x509.load_pem_x509_certificates(pem.encode())
    except ValueError:
        return None
    return max((c.not_valid_after_utc for c in certificates), default=None)


@rule(
    "certificate_expiring",
    Severity.WARNING,
    params=("expires_at", "days_left"),
    variants=("expired",),
)
async def certificate_expiring(ctx: RuleContext) -> list[Finding]:
    """The certificate ABM/ASM holds for the token's key pair ends within 60 days.

    A key can have several certificates (re-issued for the same key); the newest one counts.
    """
    found = []
    for token in ctx.tokens:
        if not token.active_certificates:
            continue
        expiry = certificate_expiry(token.active_certificates)
        if expiry is None:
            continue
        if expiry - ctx.now <= timedelta(days=ctx.limits.certificate_warning_days):
            days_left = _days_left(expiry, ctx.now)
            found.append(
                ctx.finding(
                    token,
                    variant="expired" if expiry <= ctx.now else None,
                    expires_at=stamp(expiry),
                    days_left=max(days_left, 0),
                )
            )
    return found


@rule("personal_apple_id", Severity.INFO, params=("admin_id", "domain"))
async def personal_apple_id(ctx: RuleContext) -> list[Finding]:
    """The Apple Account that downloaded the token is at a consumer mail domain."""
    found = []
    for token in ctx.tokens:
        if not token.admin_id or "@" not in token.admin_id:
            continue
        domain = token.admin_id.rsplit("@", 1)[1].strip().lower()
        if domain in CONSUMER_MAIL_DOMAINS:
            found.append(ctx.finding(token, admin_id=token.admin_id, domain=domain))
    return found
