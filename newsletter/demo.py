"""``newsletter demo``: a whole week on SQLite with the file provider, no server and no account needed.

Safe to run again: the catalog is upserted, subscribers are kept, the week's issue is built once and
its deliveries are sent once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from newsletter import issues, keycheck, migrate, publishing, wiring
from newsletter.catalog import store
from newsletter.catalog.json_format import parse_json
from newsletter.config import Settings, new_secret
from newsletter.db import session_scope
from newsletter.dispatch import Envelope, send_issue
from newsletter.errors import NewsletterError
from newsletter.recipients import RecipientSource
from newsletter.statuses import IssueStatus
from newsletter.values import Week
from subscribers import store as subscriber_store

# The bundled catalog is written around this Monday; the demo moves it to the current week.
REFERENCE_MONDAY = date(2026, 11, 23)
CATEGORIES = ("Developer Tools", "Writing", "Design")


@dataclass(frozen=True)
class DemoReport:
    """What the demo did and where it put things."""

    directory: Path
    number: int
    subject: str
    cohorts: tuple[tuple[str, int], ...]
    empty_cohorts: tuple[tuple[str, int], ...]
    written: int
    already_sent: bool
    outbox: Path
    preview: Path
    database: Path


def demo_settings(directory: Path) -> Settings:
    """Settings for the demo: everything inside ``directory``, a secret generated once and kept there."""
    secret_file = directory / "secret.key"
    kept = secret_file.read_text(encoding="utf-8").strip() if secret_file.exists() else ""
    if keycheck.weakness(kept):  # none yet, or one kept by an older version that settings now refuse
        secret_file.write_text(new_secret(), encoding="utf-8")
    return Settings(
        _env_file=None,
        database_url=f"sqlite:///{directory / 'newsletter.db'}", provider="file", outbox_dir=directory / "outbox",
        secret_key=secret_file.read_text(encoding="utf-8").strip(),
        postal_address="Weekly AI Tool Verdicts · 1 Demo Street · Springfield 00000",
        from_address="Weekly AI Tool Verdicts <verdicts@example.com>",
    )


def demo_catalog(today: date) -> dict[str, Any]:
    """The bundled catalog, shifted by whole weeks so its last week is the week of ``today``."""
    text = resources.files("newsletter").joinpath("demo_catalog.json").read_text("utf-8")
    document: dict[str, Any] = json.loads(text)
    shift = Week.containing(today).monday - REFERENCE_MONDAY

    def moved(day: str) -> str:
        return min(date.fromisoformat(day) + shift, today).isoformat()

    for tool in document["tools"]:
        tool["published"] = moved(tool["published"])
    for comparison in document["comparisons"]:
        comparison["published"] = moved(comparison["published"])
    return document


def demo_readers() -> list[tuple[str, tuple[str, ...], bool]]:
    """54 readers with varied preferences: everything, one or two categories, free tools only."""
    patterns: list[tuple[tuple[str, ...], bool]] = [
        ((), False), (("Developer Tools",), False), (("Writing",), False), (("Design",), False),
        (("Developer Tools", "Design"), False), ((), True), (("Writing",), True), (("Developer Tools",), True),
        (("Design",), True),
    ]
    return [(f"reader{n:02d}@example.com", *patterns[n % len(patterns)]) for n in range(1, 55)]


def run_demo(directory: Path, *, today: date | None = None) -> DemoReport:
    """Seed, build this week's issue, deliver it into ``directory/outbox`` and write ``preview.html``."""
    directory.mkdir(parents=True, exist_ok=True)
    settings = demo_settings(directory)
    day = today or date.today()
    with wiring.database(settings, check=False) as engine:
        if migrate.state(engine) == "empty":
            migrate.upgrade(engine)  # a new demo folder: the demo owns this database
        else:
            migrate.require_current(engine)
        return _run(engine, settings, directory, day)


def _run(engine: Engine, settings: Settings, directory: Path, day: date) -> DemoReport:
    batch = parse_json(json.dumps(demo_catalog(day)), source="bundled demo catalog")
    with session_scope(engine) as session:
        store.apply_batches(session, [batch])
        for address, categories, free_only in demo_readers():
            subscriber_store.add_active(session, [address], categories=categories, free_only=free_only)
    source = wiring.directory_for(settings, engine)
    outcome = publishing.build_issue(engine, week=Week.containing(day), source=source, env=wiring.environment(),
                               context=wiring.render_context(settings), site_url=str(settings.site_url))
    if outcome.number is None:
        raise NewsletterError("the demo catalog has no comparison in the current week; this is a bug")
    envelope = wiring.envelope_for(settings)
    written, already = _send_once(engine, outcome.number, settings, source, envelope)
    _, html, _ = publishing.preview(engine, outcome.number, envelope=envelope)
    preview = directory / "preview.html"
    preview.write_text(html, encoding="utf-8")
    with session_scope(engine) as session:
        rendered = issues.snapshots(session, issues.get_issue(session, outcome.number))
    everyone = source.cohorts()
    cohorts = tuple((cohort.key, size) for cohort, size in everyone if cohort.key in rendered)
    empty = tuple((cohort.key, size) for cohort, size in everyone if cohort.key not in rendered)
    return DemoReport(directory, outcome.number, outcome.subject or "", cohorts, empty, written, already,
                      settings.outbox_dir, preview, directory / "newsletter.db")


def _send_once(engine: Engine, number: int, settings: Settings, source: RecipientSource,
               envelope: Envelope) -> tuple[int, bool]:
    """Send the issue unless it was sent already; returns (messages written, already sent)."""
    with session_scope(engine) as session:
        if issues.get_issue(session, number).status == IssueStatus.SENT:
            return 0, True
    report = send_issue(engine, number, provider=wiring.provider_for(settings), source=source, envelope=envelope,
                        batch_size=settings.batch_size)
    return report.submitted, False
