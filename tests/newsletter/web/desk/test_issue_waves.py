"""The desk's issue page lists the waves of a local send: time, zones, readers, what is left."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import select

from newsletter import editors, worker
from newsletter.config import Settings
from newsletter.db import session_scope
from subscribers.models import Subscriber
from tests.newsletter.test_issues import build, seed
from tests.newsletter.web.desk.test_issue_page import FAST, PASSWORD, fast_gate, sign_in
from tests.newsletter.web.helpers import running


def test_the_waves_ahead_are_listed_with_their_zones_and_readers(
        engine: Engine, make_settings: Callable[..., Settings], database_url: str) -> None:
    later = datetime.now(UTC) + timedelta(hours=2)
    directory = seed(engine)
    with session_scope(engine) as session:
        for row in session.exec(select(Subscriber).where(Subscriber.email.startswith("design"))):  # type: ignore[attr-defined]
            row.time_zone = "Asia/Kolkata"
    build(engine, directory)
    editors.add_editor(engine, "ann", PASSWORD, email="ann@example.com", cost=FAST)
    with running(make_settings, database_url, gate=fast_gate, postal_address="1 Test Street",
                 site_url="https://site.example.com/compare/", delivery_mode="local", timezone="UTC",
                 local_send_time=later.strftime("%H:%M")) as (client, _):
        settings = client.app.state.wiring.settings  # type: ignore[attr-defined]
        worker.hand_to_workers(engine, 1, recipients=directory, local=settings.local_delivery)
        sign_in(client)
        page = client.get("/editor/issues/1").text
    assert f"each reader gets the issue at {later.strftime('%H:%M')} in their own zone" in page
    assert '<ul id="waves">' in page
    assert f'<li class="wave ahead">{later.strftime("%a %d %b %H:%M")} UTC: 1 zone, 7 readers, ahead, 7 left</li>' in page
    assert "1 zone, 3 readers, ahead, 3 left" in page  # Kolkata's, at its own local time
