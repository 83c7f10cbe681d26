"""Notifications: a persistent outbox delivered at least once to a signed JSON webhook, e-mail
and a device-event URL; Prometheus metrics; JSON log lines.

Settings come from ``ADESYNC_*`` variables or ``ADESYNC_HOME/notify.toml``
(:func:`load_notify_settings`). :mod:`adesync.wiring` connects the jobs to health and sync.
The names below load their module on first use, so a process that only queues notifications
(``adesync diagnose``) never imports the senders or the metrics.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from adesync.notify.deliver import Delivered, deliver_due
    from adesync.notify.metrics import metrics_app, render_metrics, start_metrics_server
    from adesync.notify.settings import NotifySettings, load_notify_settings
    from adesync.notify.signing import SIGNATURE_HEADER, sign, signature_header, verify

_HOMES = {
    "Delivered": "deliver",
    "deliver_due": "deliver",
    "metrics_app": "metrics",
    "render_metrics": "metrics",
    "start_metrics_server": "metrics",
    "NotifySettings": "settings",
    "load_notify_settings": "settings",
    "SIGNATURE_HEADER": "signing",
    "sign": "signing",
    "signature_header": "signing",
    "verify": "signing",
}

__all__ = [
    "SIGNATURE_HEADER",
    "Delivered",
    "NotifySettings",
    "deliver_due",
    "load_notify_settings",
    "metrics_app",
    "render_metrics",
    "sign",
    "signature_header",
    "start_metrics_server",
    "verify",
]


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{home}"), name)
