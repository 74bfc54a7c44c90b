"""``newsletter demo``: a whole week on SQLite with the file provider, no server and no account needed.

Safe to run again: the catalog is upserted, subscribers are kept, the week's issue is built once and
its deliveries are sent once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

from newsletter import issues, keycheck, migrate, publishing, wiring
from newsletter.catalog import store
from newsletter.catalog.json_format import parse_json
from newsletter.config import Settings, new_secret
from newsletter.db import session_scope
from newsletter.dispatch import SendOptions, send_issue
from newsletter.errors import NewsletterError
from newsletter.statuses import IssueStatus
from newsletter.values import Week
from newsletter.wiring import Wiring
from subscribers import store as subscriber_store

# The bundled catalog is written around this Monday; the demo moves it to the current week.
REFERENCE_MONDAY = date(2026, 11, 23)
CATEGORIES = ("Developer Tools", "Writing", "Design")
# The demo's issue holds up to the digest's default number of comparisons, whatever NEWSLETTER_DIGEST_LIMIT says.
DEMO_LIMIT = 8


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
    day = today or date.today()
    with wiring.build(demo_settings(directory), check_schema=False) as wired:
        if migrate.state(wired.engine) == "empty":
            migrate.upgrade(wired.engine)  # a new demo folder: the demo owns this database
        else:
            migrate.require_current(wired.engine)
        return _run(wired, directory, day)


def _run(wired: Wiring, directory: Path, day: date) -> DemoReport:
    engine = wired.engine
    batch = parse_json(json.dumps(demo_catalog(day)), source="bundled demo catalog")
    with session_scope(engine) as session:
        store.apply_batches(session, [batch])
        for address, categories, free_only in demo_readers():
            subscriber_store.add_active(session, [address], categories=categories, free_only=free_only)
    renderer = replace(wired.renderer, limit=DEMO_LIMIT)
    outcome = publishing.build_issue(engine, week=Week.containing(day), renderer=renderer)
    if outcome.number is None:
        raise NewsletterError("the demo catalog has no comparison in the current week; this is a bug")
    written, already = _send_once(wired, outcome.number)
    _, html, _ = publishing.preview(engine, outcome.number, envelope=wired.envelope)
    preview = directory / "preview.html"
    preview.write_text(html, encoding="utf-8")
    with session_scope(engine) as session:
        rendered = issues.rendered_emails(session, issues.get_issue(session, outcome.number))
    everyone = wired.recipients.cohorts()
    cohorts = tuple((cohort.key, size) for cohort, size in everyone if cohort.key in rendered)
    empty = tuple((cohort.key, size) for cohort, size in everyone if cohort.key not in rendered)
    return DemoReport(directory, outcome.number, outcome.subject or "", cohorts, empty, written, already,
                      wired.settings.outbox_dir, preview, directory / "newsletter.db")


def _send_once(wired: Wiring, number: int) -> tuple[int, bool]:
    """Send the issue unless it was sent already; returns (messages written, already sent)."""
    with session_scope(wired.engine) as session:
        if issues.get_issue(session, number).status == IssueStatus.SENT:
            return 0, True
    # The demo's send uses the default knobs but the configured batch size, as it always has.
    sending = replace(wired.sending, options=SendOptions(batch_size=wired.settings.batch_size))
    report = send_issue(wired.engine, number, provider=wired.provider(), sending=sending)
    return report.submitted, False
