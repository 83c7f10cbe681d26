"""What notifications say: the JSON documents webhooks receive and the e-mail texts, worded
once when the event is enqueued (in ``ADESYNC_LANG``)."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import date, datetime
from enum import Enum
from typing import Any

from adesync.health.catalogue import State
from adesync.health.evaluate import TokenHealth
from adesync.health.messages import Door, TokenLabel, message, render_finding
from adesync.health.model import stamp
from adesync.health.report import build_alert
from adesync.health.transitions import Transition

__all__ = [
    "device_event",
    "dumps",
    "email_text",
    "ping_event",
    "reminder_event",
    "transition_event",
]


def _default(value: object) -> object:
    if isinstance(value, datetime):
        return stamp(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def dumps(document: object) -> str:
    """Compact JSON, UTF-8 text kept as is: exactly the bytes a webhook receives."""
    return json.dumps(document, default=_default, ensure_ascii=False, separators=(",", ":"))


def _token(label: TokenLabel | None, expires_at: datetime | None) -> dict[str, Any] | None:
    if label is None:
        return None
    return {
        "name": label.name,
        "org_name": label.org_name,
        "server_name": label.server_name,
        "token_type": label.token_type,
        "expires_at": stamp(expires_at),
    }


def transition_event(change: Transition, lang: str, docs_url: str | None) -> dict[str, Any]:
    """``token.state_changed`` (or ``installation.state_changed``) with the current findings
    worded in ``lang`` and, for a token in error, the alert; worded as the console words them
    (no shell command: a notification's reader may have only the console)."""
    findings = [
        render_finding(f, change.token, lang, docs_url=docs_url, door=Door.WEB)
        for f in change.findings
    ]
    alert = None
    if change.token is not None and change.new_state is State.ERROR:
        alert = build_alert(
            [
                TokenHealth(
                    change.token,
                    change.expires_at,
                    change.new_state,
                    change.state_reason,
                    change.at,
                    (),
                )
            ],
            lang,
            Door.WEB,
        )
    return {
        "event": "installation.state_changed" if change.token is None else "token.state_changed",
        "id": str(uuid.uuid4()),
        "occurred_at": stamp(change.at),
        "lang": lang,
        "token": _token(change.token, change.expires_at),
        "previous_state": change.old_state.value if change.old_state else None,
        "state": change.new_state.value,
        "state_reason": change.state_reason,
        "codes": sorted(change.new_codes),
        "added": change.added,
        "cleared": change.cleared,
        "findings": findings,
        "alert": alert,
    }


def _days_key(days_left: int) -> str:
    if days_left <= 0:
        return "subject_reminder_today"
    if days_left == 1:
        return "subject_reminder_one"
    return "subject_reminder"


def reminder_event(
    token: TokenLabel,
    expires_at: datetime,
    days_left: int,
    threshold: int,
    now: datetime,
    lang: str,
) -> dict[str, Any]:
    """``token.expiry_reminder``: the token expires within ``threshold`` days."""
    return {
        "event": "token.expiry_reminder",
        "id": str(uuid.uuid4()),
        "occurred_at": stamp(now),
        "lang": lang,
        "token": _token(token, expires_at),
        "days_left": days_left,
        "threshold_days": threshold,
        "subject": message(
            lang,
            "notify",
            _days_key(days_left),
            token=token.name,
            org=token.org,
            days_left=days_left,
        ),
        "text": message(
            lang,
            "notify",
            "reminder",
            token=token.name,
            org=token.org,
            expires_at=stamp(expires_at),
        ),
    }


def device_event(
    token: TokenLabel, kind: str, records: Sequence[dict[str, Any]], now: datetime
) -> dict[str, Any]:
    """``devices.synced``: one committed page of a sync (``kind`` fetch or sync), with the
    count of each operation and Apple's device records."""
    ops = Counter((record.get("op_type") or "added") for record in records)
    return {
        "event": "devices.synced",
        "id": str(uuid.uuid4()),
        "occurred_at": stamp(now),
        "token": _token(token, None),
        "kind": kind,
        "ops": dict(sorted(ops.items())),
        "devices": list(records),
    }


def ping_event(now: datetime, lang: str) -> dict[str, Any]:
    return {
        "event": "test",
        "id": str(uuid.uuid4()),
        "occurred_at": stamp(now),
        "lang": lang,
        "subject": message(lang, "notify", "subject_test"),
        "text": message(lang, "notify", "test"),
    }


def email_text(document: dict[str, Any]) -> tuple[str, str]:
    """The subject and plain-text body of an e-mail for an event document."""
    lang = document.get("lang", "en")
    event = document["event"]
    if event in ("token.expiry_reminder", "test"):
        return document["subject"], document["text"] + "\n"
    state = message(lang, "states", document["state"])
    old = message(lang, "states", document["previous_state"] or "healthy")
    token = document["token"]
    if token is None:
        subject = message(lang, "notify", "subject_installation", state=state)
        lines = [message(lang, "notify", "installation_changed", old=old, new=state)]
    else:
        org = token["org_name"] or token["name"]
        subject = message(
            lang, "notify", "subject_state", token=token["name"], org=org, state=state
        )
        lines = [
            message(
                lang, "notify", "state_changed", token=token["name"], org=org, old=old, new=state
            )
        ]
    if document["cleared"]:
        lines.append(message(lang, "notify", "cleared", codes=", ".join(document["cleared"])))
    alert = document.get("alert")
    if alert:
        lines += ["", alert["title"], alert["text"], *(f"  - {s}" for s in alert["symptoms"])]
    if not document["findings"]:
        lines += ["", message(lang, "notify", "now_healthy")]
    for finding in document["findings"]:
        severity = message(lang, "severities", finding["severity"]).upper()
        lines += ["", f"[{severity}] {finding['title']} ({finding['code']})", finding["detail"]]
        lines.append(f"{message(lang, 'report', 'steps')}:")
        lines += [f"  {n}. {step}" for n, step in enumerate(finding["remediation"], start=1)]
        lines.append(f"{message(lang, 'report', 'actor')}: {finding['actor']}")
        lines.append(f"{message(lang, 'report', 'docs')}: {finding['doc_url']}")
    return subject, "\n".join(lines) + "\n"
