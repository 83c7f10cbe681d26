"""Notifications: a persistent outbox delivered at least once to a signed JSON webhook, e-mail
and a device-event URL; Prometheus metrics; JSON log lines.

Settings come from ``ADESYNC_*`` variables or ``ADESYNC_HOME/notify.toml``
(:func:`load_notify_settings`). :mod:`adesync.wiring` connects the jobs to health and sync.
"""

from adesync.notify.deliver import Delivered, deliver_due
from adesync.notify.metrics import metrics_app, render_metrics, start_metrics_server
from adesync.notify.settings import NotifySettings, load_notify_settings
from adesync.notify.signing import SIGNATURE_HEADER, sign, signature_header, verify

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
