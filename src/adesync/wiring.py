"""The composition root: connects health and notify to the sync engine's hooks.

The CLI and ``serve`` call :func:`install` once at start. Each feature adds its registration
here, in one place, so the wiring of the whole application can be read in one file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from adesync.store.database import Database

if TYPE_CHECKING:
    from adesync.notify.metrics import MetricsServer
    from adesync.store.sync_repo import PageEvents

_installed: set[str] = set()


def start_metrics_server(db: Database, port: int, host: str = "127.0.0.1") -> MetricsServer:
    """Serve Prometheus metrics on ``host:port`` without authentication (call it inside the
    running event loop); this machine only unless ``host`` says otherwise."""
    from adesync.notify.metrics import start_metrics_server as start

    return start(db, port, host)


def page_events() -> PageEvents:
    """What every page of devices writes in its own transaction, beside its devices and its
    cursor: the ``devices.synced`` events (when device events are configured). Each process
    that syncs hands it to its ``SyncService`` (or ``Scheduler``)."""
    from adesync.notify.jobs import write_device_page

    return write_device_page


def install() -> None:
    """Register every hook (idempotent)."""
    if "sync" not in _installed:
        _installed.add("sync")
        _install_enrollment()
        _install_health_and_notify()
    install_evaluation()


def install_evaluation() -> None:
    """What evaluating health needs in any process (idempotent): transitions go to notify's
    outbox in health's transaction, and logs are JSON when configured. A command that
    evaluates without syncing (``diagnose``) installs only this: the sync and scheduler hooks
    would load the enrollment package (and httpx) for nothing."""
    if "evaluation" in _installed:
        return
    _installed.add("evaluation")
    from adesync.health.transitions import ON_TRANSITION
    from adesync.notify import jobs as notify_jobs

    ON_TRANSITION.append(notify_jobs.enqueue_transitions)
    _json_logs()


def _install_enrollment() -> None:
    """Each page's upsert writes the enrollment state of devices without MDM steps, and the
    page's devices that have events are re-derived after it (a device that syncs after its MDM
    events takes them over); each period, before health evaluates, time-based states
    are caught up and the enrollment URLs that are due are probed."""
    from adesync.enrollment import jobs as enrollment_jobs
    from adesync.enrollment.state import ENROLLMENT_STATE_COLUMN
    from adesync.sync import hooks

    hooks.DERIVED_DEVICE_COLUMNS.append(ENROLLMENT_STATE_COLUMN)
    hooks.ON_PAGE_COMMITTED.append(enrollment_jobs.refresh_after_page)
    hooks.PERIODIC.append((enrollment_jobs.REFRESH_LEASE, enrollment_jobs.refresh_job))
    hooks.PERIODIC.append((enrollment_jobs.PROBE_LEASE, enrollment_jobs.probe_job))


def _install_health_and_notify() -> None:
    """Health evaluates after each token's sync and every period; notify queues reminders,
    delivers the outbox, counts runs and calls to Apple (transitions:
    :func:`install_evaluation`; device events: :func:`page_events`)."""
    from adesync.health import jobs as health_jobs
    from adesync.notify import jobs as notify_jobs
    from adesync.sync import hooks

    hooks.AFTER_TOKEN_SYNC.append(health_jobs.evaluate_after_sync)
    hooks.AFTER_TOKEN_SYNC.append(notify_jobs.count_run)
    hooks.ON_APPLE_ANSWER.append(notify_jobs.count_apple_answer)
    # In this order each period: evaluate, remind, then deliver what the two queued.
    hooks.PERIODIC.append((health_jobs.PERIODIC_LEASE, health_jobs.evaluate_everything))
    hooks.PERIODIC.append((notify_jobs.REMINDER_LEASE, notify_jobs.remind_job))
    hooks.PERIODIC.append((notify_jobs.DELIVER_LEASE, notify_jobs.deliver_outbox))


def _json_logs() -> None:
    """With ADESYNC_LOG_JSON=true, adesync's logs become one JSON object per line."""
    from adesync.config import load_settings
    from adesync.errors import ConfigError
    from adesync.notify.logs import configure_logging

    try:
        settings = load_settings()
    except ConfigError:
        return  # the command itself reports the bad setting
    if settings.log_json:
        configure_logging(settings.log_level, as_json=True)
