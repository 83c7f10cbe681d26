"""``adesync diagnose``: check every token with Apple now, re-evaluate health and report it;
the exit code makes it a monitoring check (0 healthy, 1 warning, 2 error; 3 when adesync itself
could not run the check, Nagios' UNKNOWN). ``--stored`` re-evaluates stored facts only.

Health itself is imported when the command runs, so other commands start without it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

from adesync.commands.common import out, print_json, run
from adesync.config import Settings, load_settings
from adesync.errors import AdesyncError

if TYPE_CHECKING:
    from adesync.health.evaluate import Health
    from adesync.runtime import Runtime

__all__ = ["diagnose", "diagnose_report", "stored_diagnose_report"]

UNKNOWN = 3
_COLOURS = {"error": "red", "warning": "yellow", "info": "cyan", "healthy": "green"}


class DiagnoseFailed(AdesyncError):
    """Health could not be checked; a monitoring system should show UNKNOWN."""

    code = "diagnose_failed"
    exit_code = UNKNOWN


async def _evaluated(runtime: Runtime, token_id: int | None) -> Health:
    from adesync.health.evaluate import evaluate

    return await evaluate(runtime.db, token_id=token_id)


async def diagnose_report(settings: Settings, token: str | None, lang: str) -> dict[str, Any]:
    """Check every token (or ``token``) with Apple now, recording what Apple answers as a
    check does, then re-evaluate and return the report document."""
    from adesync import wiring
    from adesync.health.report import build_report
    from adesync.health.stored import find_token_id
    from adesync.runtime import open_runtime
    from adesync.services.diagnose import check_tokens_live
    from adesync.sync.service import SyncService

    wiring.install()
    async with open_runtime(settings) as runtime:
        token_id = None if token is None else await find_token_id(runtime.db, token)
        service = SyncService(runtime.db, runtime.box, settings)
        await check_tokens_live(
            runtime.db, service.check, service.record_unreachable, token_id=token_id
        )
        health = await _evaluated(runtime, token_id)
    return build_report(health, lang, docs_url=settings.docs_url)


async def stored_diagnose_report(
    settings: Settings, token: str | None, lang: str
) -> dict[str, Any]:
    """Re-evaluate the stored facts of every token (or ``token``) without calling Apple and
    return the report document."""
    from adesync import wiring
    from adesync.health.report import build_report
    from adesync.health.stored import find_token_id
    from adesync.runtime import open_runtime

    wiring.install_evaluation()
    async with open_runtime(settings) as runtime:
        token_id = None if token is None else await find_token_id(runtime.db, token)
        health = await _evaluated(runtime, token_id)
    return build_report(health, lang, docs_url=settings.docs_url)


def diagnose(
    token: str | None = typer.Option(None, "--token", help="Check this token only."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON document."),
    lang: str | None = typer.Option(
        None, "--lang", help="Language of the texts: en or zh-CN (default ADESYNC_LANG)."
    ),
    stored: bool = typer.Option(
        False,
        "--stored",
        help="Re-evaluate what is stored without asking Apple (for checks run every minute).",
    ),
) -> None:
    """Check every token with Apple now and explain what is wrong (exit 0 healthy, 1 warning,
    2 error, 3 adesync could not run)."""
    from adesync.health.catalogue import State, exit_code_for
    from adesync.health.messages import LANGUAGES

    if lang is not None and lang not in LANGUAGES:
        raise DiagnoseFailed(f"--lang must be one of {', '.join(LANGUAGES)}, not {lang!r}.")
    _freeze_startup_objects(live=not stored)
    settings = _settings()
    report_of = stored_diagnose_report if stored else diagnose_report
    report = _unknown_on_failure(
        settings, lambda: run(report_of(settings, token, lang or settings.lang))
    )
    if as_json:
        print_json(report)
    else:
        show(report, lang or settings.lang)
    raise typer.Exit(exit_code_for(State(report["status"])))


def _settings() -> Settings:
    try:
        return load_settings()
    except AdesyncError as exc:
        raise DiagnoseFailed(exc.message, code=exc.code) from exc


def _unknown_on_failure(settings: Settings, check: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``check()``, or DiagnoseFailed (exit 3, one sentence) when adesync itself cannot run
    it: its settings, database or secret key; a defect too, since exit 1 would read as a
    warning. What Apple answers is never such a failure: the checks record it as findings."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    try:
        return check()
    except AdesyncError as exc:
        raise DiagnoseFailed(exc.message, code=exc.code) from exc
    except (SQLAlchemyError, OSError) as exc:
        url = make_url(settings.effective_database_url).render_as_string(hide_password=True)
        raise DiagnoseFailed(
            f"adesync could not check: the database at {url} failed ({_first_line(exc)}).",
            code="database_unavailable",
        ) from exc
    except Exception as exc:
        raise DiagnoseFailed(
            f"adesync could not check: unexpected error {_first_line(exc)} (run again with "
            "--debug for the traceback, and please report it).",
            code="internal_error",
        ) from exc


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _freeze_startup_objects(*, live: bool) -> None:
    """Import what the check runs, then keep those long-lived objects (modules, tables, rules)
    out of garbage collection: evaluating 2,000 tokens allocates enough for full collections,
    and each walked every start-up object again (0.3-0.4 s of CPU of a 1.5 s run of
    bench/diagnose.py). No collection first: the process ends within seconds."""
    import adesync.health.evaluate
    import adesync.health.report
    import adesync.runtime
    from adesync.longlived import freeze_startup_objects

    if live:
        import adesync.services.diagnose
        import adesync.sync.service  # noqa: F401
    freeze_startup_objects(collect=False)


def show(report: dict[str, Any], lang: str) -> None:
    """The report for a person: the alert, then the findings grouped by token, worst first."""
    from adesync.health.messages import message

    alert = report["alert"]
    if alert is not None:
        out.print(f"[bold red]{escape(alert['title'])}[/bold red]")
        out.print(escape(alert["text"]))
        for symptom in alert["symptoms"]:
            out.print(f"  • {escape(symptom)}")
        names = ", ".join(
            f"{t['name']} ({t['org_name'] or t['name']})" for t in alert["affected_tokens"]
        )
        out.print(f"{escape(message(lang, 'alert', 'affected'))}: [bold]{escape(names)}[/bold]")
        out.print()
    status = report["status"]
    state_word = message(lang, "states", status)
    out.print(
        f"[bold]{escape(message(lang, 'report', 'status', state=state_word))}[/bold]",
        style=_COLOURS[status],
    )
    if not report["tokens"] and not report["findings"]:
        out.print(escape(message(lang, "report", "no_tokens")))
        return
    grouped: dict[str | None, list[dict[str, Any]]] = {}
    for finding in report["findings"]:
        grouped.setdefault(finding["token"], []).append(finding)
    states = {t["name"]: t for t in report["tokens"]}
    for name, items in grouped.items():
        out.print()
        if name is None:
            out.print(f"[bold]{escape(message(lang, 'report', 'installation'))}[/bold]")
        else:
            token = states.get(name, {})
            state = token.get("state", "healthy")
            org = token.get("org_name") or message(lang, "report", "unknown_org")
            out.print(
                f"[bold {_COLOURS[state]}]● {escape(name)}[/bold {_COLOURS[state]}] "
                f"({escape(org)}) — {escape(message(lang, 'states', state))}"
            )
        for finding in items:
            _show_finding(finding, lang)
    healthy = [t["name"] for t in report["tokens"] if t["name"] not in grouped]
    if healthy:
        out.print()
        out.print(
            f"[green]✓[/green] {escape(message(lang, 'report', 'healthy_tokens'))}: "
            f"{escape(', '.join(healthy))}"
        )


def _show_finding(finding: dict[str, Any], lang: str) -> None:
    from rich.padding import Padding

    from adesync.health.messages import message

    def block(text: str, indent: int) -> None:
        # Wrapped lines stay under their heading.
        out.print(Padding(escape(text), (0, 0, 0, indent), expand=False))

    severity = finding["severity"]
    label = message(lang, "severities", severity).upper()
    out.print(
        f"  [{_COLOURS[severity]}]{escape(label)}[/{_COLOURS[severity]}] "
        f"[bold]{escape(finding['title'])}[/bold] [dim]({finding['code']})[/dim]"
    )
    block(finding["detail"], 4)
    if finding["samples"]:
        samples = ", ".join(finding["samples"])
        block(f"{message(lang, 'report', 'samples')}: {samples}", 4)
    block(f"{message(lang, 'report', 'steps')}:", 4)
    for number, step in enumerate(finding["remediation"], start=1):
        block(f"{number}. {step}", 6)
    block(f"{message(lang, 'report', 'actor')}: {finding['actor']}", 4)
    block(f"{message(lang, 'report', 'docs')}: {finding['doc_url']}", 4)
