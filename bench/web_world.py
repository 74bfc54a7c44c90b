"""The seeded world of ``bench/web.py``: a fresh database migrated to the head, the demo catalog, the readers and
this week's issue built and submitted a day ago, and what the bench reads back from the database."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import web_cases
from bench.web_cases import World

SECRET = "Xb5oMwV2c8RkQz-t1NyLJf7uHq3GdPaE4sWn9KiYv0T"
SITE = "https://site.example.com/compare/"


def database(url: str | None, folder: Path) -> tuple[str, Callable[[], None]]:
    """A fresh database URL (a SQLite file, or a new PostgreSQL schema) migrated to the head, and how to drop it."""
    from sqlalchemy import text

    from newsletter import migrate
    from newsletter.db import make_engine

    if url is None:
        found = f"sqlite:///{folder / 'bench.db'}"
        engine = make_engine(found)
        migrate.upgrade(engine)
        engine.dispose()
        return found, lambda: None
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = make_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    found = f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    engine = make_engine(found)
    migrate.upgrade(engine)
    engine.dispose()

    def drop() -> None:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
    return found, drop


def values(world: World, folder: Path, *, track: bool) -> dict[str, Any]:
    """The server's settings (as for ``Settings``; ``newsletter serve`` gets them as NEWSLETTER_* variables)."""
    return {"database_url": world.database_url, "secret_key": SECRET, "postal_address": "1 Bench Street",
            "public_url": world.base, "site_url": SITE, "provider": "file", "outbox_dir": str(folder / "out"),
            "track_readers": "true" if track else "false", "log_level": "WARNING",
            "signup_rate_limit": 10_000,  # every bench client is 127.0.0.1: the per-address limit is not measured
            "sendgrid_webhook_public_key": web_cases.SENDGRID_PUBLIC}


def seed(world: World, readers: int, settings_values: dict[str, Any]) -> None:
    """The demo catalog, ``readers`` active subscribers, this week's issue built and submitted a day ago."""
    from sqlalchemy import insert, update
    from sqlmodel import select

    from newsletter import wiring
    from newsletter.catalog import store
    from newsletter.catalog.json_format import parse_json
    from newsletter.clicks.links import targets_of
    from newsletter.config import Settings
    from newsletter.db import session_scope
    from newsletter.demo import demo_catalog
    from newsletter.models import DeliveryRow, IssueCohortRow, IssueRow
    from newsletter.publishing import build_issue
    from newsletter.values import Week
    from subscribers.models import Subscriber

    settings = Settings(_env_file=None, **settings_values)
    with wiring.build(settings, check_schema=False) as wired:
        engine, today, now = wired.engine, date.today(), datetime.now(UTC)
        with session_scope(engine) as session:
            store.apply_batches(session, [parse_json(json.dumps(demo_catalog(today)), source="demo")])
        with engine.begin() as connection:
            connection.execute(insert(Subscriber.__table__), [  # type: ignore[attr-defined]
                {"email": f"reader{i:07d}@example.org", "status": "active", "categories": "", "free_only": False,
                 "source": "bench", "created_at": now} for i in range(readers)])
        outcome = build_issue(engine, week=Week.containing(today), renderer=wired.renderer)
        assert outcome.number is not None
        with session_scope(engine) as session:
            session.execute(update(DeliveryRow).values(status="submitted", submitted_at=now - timedelta(days=1)))
            session.execute(update(IssueRow).values(status="sent", sent_at=now - timedelta(days=1)))  # archived
            issue_id = session.exec(select(IssueRow.id).where(IssueRow.number == outcome.number)).one()
            assert issue_id is not None
            world.links = sorted(targets_of(session, issue_id))
            sent = list(session.exec(select(DeliveryRow.id, DeliveryRow.subscriber_id).order_by(DeliveryRow.id)))
            texts = session.exec(select(IssueCohortRow.text).where(IssueCohortRow.issue_id == issue_id))
            world.votes = sorted({found.groups() for text in texts for found in web_cases.VOTE_LINK.finditer(text)})
        world.number, world.signer = outcome.number, wired.signer
        world.deliveries = [delivery for delivery, _ in sent if delivery is not None]
        world.readers = sorted(subscriber for _, subscriber in sent)
        if settings.track_readers:
            world.tokens = [wired.signer.mint_voter(i, outcome.number) for i in world.readers]


def count_clicks(database_url: str) -> int:
    from sqlalchemy import func, select

    from newsletter.db import make_engine
    from newsletter.models import ClickRow

    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(ClickRow)).scalar_one())
    finally:
        engine.dispose()
