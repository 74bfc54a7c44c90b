"""``newsletter demo``: a whole week on SQLite with the file provider, no server and no account needed.

Safe to run again: the catalog is upserted, subscribers are kept, the week's issue is built once and
its deliveries are sent once. The folder gets a ``.env`` holding the demo's settings, so ``newsletter serve`` run
there serves the pages the demo email links to, signed with the same key (kept from run to run).
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, replace
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from newsletter import issues, keycheck, publishing, wiring
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
# Where `newsletter serve` listens by default: the demo's links point there.
DEMO_URL = "http://127.0.0.1:8000"
POSTAL_ADDRESS = "Weekly AI Tool Verdicts · 1 Demo Street · Springfield 00000"
FROM_ADDRESS = "Weekly AI Tool Verdicts <verdicts@example.com>"
ENV_MARK = "# Written by `newsletter demo`"


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
    env_file: Path

    @property
    def serve_command(self) -> str:
        """The shell line that serves the demo's pages from its folder."""
        return f"cd {shlex.quote(str(self.directory))} && newsletter serve"


def demo_settings(directory: Path) -> Settings:
    """Settings for the demo: everything inside ``directory``, a secret generated once and kept there.

    Writes ``directory/.env`` with the same settings, paths relative to the folder, for ``newsletter serve``.
    """
    key = _kept_key(directory)
    _write_env(directory, key)
    return Settings(
        _env_file=None,
        database_url=f"sqlite:///{directory / 'newsletter.db'}", provider="file", outbox_dir=directory / "outbox",
        secret_key=key, postal_address=POSTAL_ADDRESS, from_address=FROM_ADDRESS, public_url=DEMO_URL,
    )


def _kept_key(directory: Path) -> str:
    """The key of an earlier run (its .env, or the secret.key of older versions), or a new one."""
    env = directory / ".env"
    kept = (dotenv_values(env).get("NEWSLETTER_SECRET_KEY") if env.exists() else None) or ""
    legacy = directory / "secret.key"
    if not kept and legacy.exists():
        kept = legacy.read_text(encoding="utf-8").strip()
    # None yet, or one kept by an older version that settings now refuse: links signed with it stop working.
    return new_secret() if keycheck.weakness(kept) else kept


def _write_env(directory: Path, key: str) -> None:
    env = directory / ".env"
    if env.exists() and not env.read_text(encoding="utf-8").startswith(ENV_MARK):
        raise NewsletterError(f"{env} exists and was not written by the demo; give the demo a folder of its own "
                              "with --dir")
    values = {"DATABASE_URL": "sqlite:///newsletter.db", "SECRET_KEY": key, "PUBLIC_URL": DEMO_URL,
              "POSTAL_ADDRESS": POSTAL_ADDRESS, "FROM_ADDRESS": FROM_ADDRESS, "PROVIDER": "file",
              "OUTBOX_DIR": "outbox"}
    lines = [f"{ENV_MARK}: what `newsletter serve` run in this folder needs. Each demo run rewrites it",
             "# and keeps the secret key, so the links in outbox/ keep working.",
             *(f'NEWSLETTER_{name}="{value}"' for name, value in values.items())]
    env.write_text("\n".join(lines) + "\n", encoding="utf-8")


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
    with wiring.build(demo_settings(directory)) as wired:  # a new demo folder gets its schema here
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
                      wired.settings.outbox_dir, preview, directory / "newsletter.db", directory / ".env")


def _send_once(wired: Wiring, number: int) -> tuple[int, bool]:
    """Send the issue unless it was sent already; returns (messages written, already sent)."""
    with session_scope(wired.engine) as session:
        if issues.get_issue(session, number).status == IssueStatus.SENT:
            return 0, True
    # The demo's send uses the default knobs but the configured batch size, as it always has.
    sending = replace(wired.sending, options=SendOptions(batch_size=wired.settings.batch_size))
    report = send_issue(wired.engine, number, provider=wired.provider(), sending=sending)
    return report.submitted, False
