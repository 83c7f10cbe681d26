"""``adesync devices import-enrollments FILE``: enrollment events from a CSV or JSON file.

CSV has a header row naming ``serial_number``, ``event`` and ``at`` (other columns are
ignored); JSON is an array of such objects, or ``{"events": [...]}``. The whole file is checked
before anything is stored: one bad row and nothing is recorded.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from adesync.enrollment.errors import InvalidEnrollmentData
from adesync.enrollment.model import EnrollmentEvent, EventSource, RecordResult
from adesync.enrollment.native import FIELDS, native_event
from adesync.enrollment.recorder import record_events
from adesync.store.database import Database

__all__ = ["MAX_IMPORT_BYTES", "import_file", "parse_csv", "parse_json", "read_events"]

MAX_IMPORT_BYTES = 64 * 1024 * 1024


def parse_json(text: str, now: datetime) -> list[EnrollmentEvent]:
    try:
        document: Any = json.loads(text)
    except ValueError as exc:
        raise InvalidEnrollmentData(f"The file is not valid JSON (line {_line(exc)}).") from None
    if isinstance(document, dict) and isinstance(document.get("events"), list):
        document = document["events"]
    if not isinstance(document, list):
        raise InvalidEnrollmentData(
            'The JSON file must be an array of events or an object with an "events" array.'
        )
    return [
        native_event(item, EventSource.IMPORT, now, where=f"Event {number}: ")
        for number, item in enumerate(document, 1)
    ]


def _line(exc: ValueError) -> int:
    return int(getattr(exc, "lineno", 0) or 0)


def parse_csv(text: str, now: datetime) -> list[EnrollmentEvent]:
    reader = csv.DictReader(io.StringIO(text))
    header = [name.strip().lower() for name in (reader.fieldnames or [])]
    missing = [name for name in FIELDS if name not in header]
    if missing:
        raise InvalidEnrollmentData(
            f"The CSV header must name {', '.join(FIELDS)} (missing: {', '.join(missing)})."
        )
    reader.fieldnames = header
    events = []
    try:
        for row in reader:
            if not any((value or "").strip() for value in row.values() if isinstance(value, str)):
                continue  # blank line
            line = reader.line_num
            events.append(native_event(row, EventSource.IMPORT, now, where=f"Line {line}: "))
    except csv.Error as exc:
        raise InvalidEnrollmentData(
            f"Line {reader.line_num}: the CSV is malformed ({exc})."
        ) from None
    return events


def read_events(path: Path, now: datetime) -> list[EnrollmentEvent]:
    """Every event of the file, or InvalidEnrollmentData naming the first problem."""
    try:
        size = path.stat().st_size
        if size > MAX_IMPORT_BYTES:
            raise InvalidEnrollmentData(
                f"{path} is over the {MAX_IMPORT_BYTES // (1024 * 1024)} MiB import limit."
            )
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise InvalidEnrollmentData(f"{path} does not exist.") from None
    except IsADirectoryError:
        raise InvalidEnrollmentData(f"{path} is a folder, not a file.") from None
    except UnicodeDecodeError:
        raise InvalidEnrollmentData(f"{path} is not UTF-8 text.") from None
    except OSError as exc:
        raise InvalidEnrollmentData(f"{path} cannot be read ({exc.strerror}).") from None
    suffix = path.suffix.lower()
    starts_like_json = text.lstrip()[:1] in ("[", "{")
    if suffix == ".json" or (suffix != ".csv" and starts_like_json):
        events = parse_json(text, now)
    else:
        events = parse_csv(text, now)
    if not events:
        raise InvalidEnrollmentData(f"{path} holds no events.")
    return events


async def import_file(db: Database, path: Path, now: datetime) -> RecordResult:
    """Check the whole file, then record its events in one transaction."""
    return await record_events(db, read_events(path, now), now)
