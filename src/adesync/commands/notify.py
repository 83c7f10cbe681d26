"""``adesync notify status|test|deliver|retry``: see and drive the notification outbox."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from adesync.commands.common import iso, out, print_json, run
from adesync.errors import AdesyncError

if TYPE_CHECKING:
    from adesync.notify.deliver import Delivered

__all__ = ["notify_app"]

notify_app = typer.Typer(
    help="Notifications: webhook, e-mail and device events.", no_args_is_help=True
)


class DeliveryFailures(AdesyncError):
    code = "notifications_failing"


@notify_app.command("status")
def status(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Show the configured channels and the outbox: what waits, what failed and why."""

    from adesync.notify.outbox import outbox_summary, recent_items
    from adesync.notify.settings import FILE_NAME, load_notify_settings
    from adesync.runtime import open_runtime

    async def go() -> dict[str, Any]:
        settings = load_notify_settings()
        async with open_runtime() as runtime:
            summary = await outbox_summary(runtime.db)
            items = await recent_items(runtime.db)
        return {
            "channels": settings.channels(),
            "queued": [
                {"channel": channel, "status": state, "count": count}
                for (channel, state), count in sorted(summary.items())
            ],
            "recent": [
                {
                    "id": item.id,
                    "channel": item.channel,
                    "event": item.event,
                    "status": item.status,
                    "attempts": item.attempts,
                    "created_at": iso(item.created_at),
                    "next_attempt_at": iso(item.next_attempt_at)
                    if item.status == "pending"
                    else None,
                    "last_error": item.last_error,
                }
                for item in items
            ],
        }

    document = run(go())
    if as_json:
        print_json(document)
        return
    channels = ", ".join(document["channels"]) or f"none (set them in {FILE_NAME})"
    out.print(f"Channels: {escape(channels)}")
    table = Table("id", "channel", "event", "status", "attempts", "next try", "last error")
    for item in document["recent"]:
        table.add_row(
            str(item["id"]),
            item["channel"],
            item["event"],
            item["status"],
            str(item["attempts"]),
            item["next_attempt_at"] or "",
            escape(item["last_error"] or ""),
        )
    out.print(table)


def _report(done: Delivered) -> None:
    out.print(f"sent {done.sent}, to retry {done.retrying}, given up {done.failed}")
    if done.retrying or done.failed:
        raise DeliveryFailures(
            "Some notifications were not delivered; `adesync notify status` shows why."
        )


@notify_app.command("deliver")
def deliver() -> None:
    """Deliver every due notification now (the scheduler does this every minute)."""
    from adesync.notify.deliver import deliver_due
    from adesync.notify.settings import load_notify_settings
    from adesync.runtime import open_runtime

    async def go() -> Delivered:
        settings = load_notify_settings()
        async with open_runtime() as runtime:
            return await deliver_due(runtime.db, settings=settings)

    _report(run(go()))


@notify_app.command("test")
def send_test() -> None:
    """Send a test notification on every configured channel now."""
    from adesync.notify.deliver import deliver_due
    from adesync.notify.events import dumps, email_text, ping_event
    from adesync.notify.outbox import Queued, enqueue
    from adesync.notify.settings import FILE_NAME, load_notify_settings
    from adesync.runtime import open_runtime
    from adesync.store.types import utcnow

    async def go() -> Delivered:
        settings = load_notify_settings()
        channels = [c for c in settings.channels() if c != "device_events"]
        if not channels:
            raise AdesyncError(
                f"No notification channel is configured; set ADESYNC_WEBHOOK_URL or "
                f"ADESYNC_SMTP_HOST (or {FILE_NAME})."
            )
        now = utcnow()
        document = ping_event(now, settings.lang)
        key = f"test:{uuid.uuid4()}"
        items = []
        if "webhook" in channels:
            items.append(Queued("webhook", "test", key, dumps(document)))
        if "email" in channels:
            subject, text = email_text(document)
            items.append(Queued("email", "test", key, dumps({"subject": subject, "text": text})))
        async with open_runtime() as runtime:
            async with runtime.db.write() as session:
                await enqueue(session, items, now)
            return await deliver_due(runtime.db, settings=settings, now=now)

    _report(run(go()))


@notify_app.command("retry")
def retry() -> None:
    """Queue every notification that was given up on again."""
    from adesync.notify.outbox import retry_failed
    from adesync.runtime import open_runtime
    from adesync.store.types import utcnow

    async def go() -> int:
        async with open_runtime() as runtime:
            return await retry_failed(runtime.db, utcnow())

    count = run(go())
    out.print(f"{count} notification(s) queued again; they go out at the next delivery.")
