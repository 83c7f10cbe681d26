"""Sending one notification: a signed JSON POST, or an e-mail over SMTP.

Each sender raises :class:`DeliveryFailed` with one sentence when the receiver did not accept
the notification; the deliverer records it and tries again later.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import httpx

from adesync import __version__
from adesync.notify.settings import NotifySettings
from adesync.notify.signing import SIGNATURE_HEADER, signature_header
from adesync.redact import redact_url, redact_urls

__all__ = ["DeliveryFailed", "post_signed", "send_email"]

DELIVERY_HEADER = "X-Adesync-Delivery"
EVENT_HEADER = "X-Adesync-Event"


class DeliveryFailed(Exception):
    """The receiver did not accept the notification; ``str()`` says why in one sentence."""


async def post_signed(
    url: str,
    secret: bytes,
    body: str,
    *,
    event: str,
    delivery_id: int,
    timeout_seconds: float,
    transport: httpx.AsyncBaseTransport | None = None,
) -> None:
    """POST ``body`` (JSON) to ``url`` signed with ``secret``; any 2xx answer is success."""
    content = body.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"adesync/{__version__}",
        EVENT_HEADER: event,
        DELIVERY_HEADER: str(delivery_id),
        SIGNATURE_HEADER: signature_header(secret, content),
    }
    # The URL's userinfo, path and query may hold the receiver's secret (Slack, Teams).
    where = redact_url(url)
    try:
        async with httpx.AsyncClient(timeout=timeout_seconds, transport=transport) as client:
            response = await client.post(url, content=content, headers=headers)
    except httpx.HTTPError as exc:
        why = redact_urls(str(exc))
        raise DeliveryFailed(f"POST {where} failed: {type(exc).__name__}: {why}") from None
    if not response.is_success:
        text = redact_urls(" ".join(response.text.split())[:200])
        raise DeliveryFailed(f"POST {where} answered HTTP {response.status_code} {text}".strip())


def _send_email(settings: NotifySettings, subject: str, text: str) -> None:
    assert settings.smtp_host and settings.email_from
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = settings.email_from
    message["To"] = ", ".join(settings.email_to)
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=settings.email_from.rpartition("@")[2] or None)
    message.set_content(text)
    timeout = settings.timeout_seconds
    context = ssl.create_default_context()
    if settings.smtp_security == "tls":
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(
            settings.smtp_host, settings.smtp_port, timeout=timeout, context=context
        )
    else:
        smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout)
    with smtp:
        if settings.smtp_security == "starttls":
            smtp.starttls(context=context)
        if settings.smtp_username and settings.smtp_password is not None:
            smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
        smtp.send_message(message)


async def send_email(settings: NotifySettings, subject: str, text: str) -> None:
    """Send a plain-text e-mail to ``email_to`` (smtplib, in a worker thread)."""
    try:
        await asyncio.to_thread(_send_email, settings, subject, text)
    except (OSError, smtplib.SMTPException) as exc:
        where = f"{settings.smtp_host}:{settings.smtp_port}"
        raise DeliveryFailed(
            f"SMTP delivery through {where} failed: {type(exc).__name__}: {exc}"
        ) from exc
