"""The subscriber chart: SVG a reader can read without JavaScript, and the figures behind it (both databases)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from xml.etree import ElementTree as ET

from sqlalchemy.engine import Engine
from sqlmodel import Session

from subscribers.chart import subscriber_chart
from subscribers.figures import subscribers_over_time
from subscribers.models import Subscriber


def test_the_chart_is_valid_svg_with_a_title_and_a_summary() -> None:
    svg = subscriber_chart([(date(2026, 11, 2), 10), (date(2026, 11, 9), 25), (date(2026, 11, 16), 20)])
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    assert root.get("role") == "img"
    assert root.find(f"{ns}title").text == "Active subscribers"
    assert root.find(f"{ns}desc").text == "Active subscribers: 10 on 02 Nov 2026, 20 on 16 Nov 2026, peak 25."
    assert len(root.find(f"{ns}polyline").get("points").split()) == 3
    assert subscriber_chart([]) == ""


def test_counts_follow_confirmations_and_departures(engine: Engine) -> None:
    def at(day: int) -> datetime:
        return datetime(2026, 11, day, 12, tzinfo=UTC)

    with Session(engine) as session:
        session.add(Subscriber(email="a@example.com", status="active", created_at=at(1), confirmed_at=at(1)))
        session.add(Subscriber(email="b@example.com", status="unsubscribed", created_at=at(1), confirmed_at=at(3),
                               unsubscribed_at=at(10)))
        session.add(Subscriber(email="c@example.com", status="bounced", created_at=at(12), confirmed_at=at(12),
                               unsubscribed_at=at(20)))
        session.add(Subscriber(email="d@example.com", status="pending", created_at=at(2)))
        session.commit()
        points = subscribers_over_time(session, weeks=4, today=date(2026, 11, 23))
    assert points == [(date(2026, 11, 2), 1), (date(2026, 11, 9), 2), (date(2026, 11, 16), 2),
                      (date(2026, 11, 23), 1)]
