"""The unsubscribe page offers a pause and fewer categories before leaving; one-click still leaves at once."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from newsletter.config import Settings
from subscribers.models import Subscriber
from tests.newsletter.test_issues import seed
from tests.newsletter.web.helpers import running
from tests.newsletter.web.test_app import status, token_for


@pytest.fixture
def client(database_url: str, make_settings: Callable[..., Settings]) -> Iterator[TestClient]:
    with running(make_settings, database_url) as (test_client, _):
        yield test_client


def pause_of(engine: Engine, subscriber_id: int) -> int:
    with Session(engine) as session:
        row = session.get(Subscriber, subscriber_id)
        assert row is not None
        return row.pause_remaining


def test_the_unsubscribe_page_offers_a_pause_and_fewer_categories(engine: Engine, client: TestClient) -> None:
    seed(engine)
    subscriber, token = token_for(engine, "design1@example.com")
    page = client.get(f"/unsubscribe/{token}").text
    assert "Pause instead" in page and "choose fewer categories" in page
    preferences = re.search(r'href="(/preferences/[^"]+)">choose fewer categories', page)
    assert preferences and client.get(preferences[1]).status_code == 200
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert csrf
    forged = client.post(f"/unsubscribe/{token}/pause", data={"pause": "4"})
    assert forged.status_code == 400 and pause_of(engine, subscriber) == 0
    paused = client.post(f"/unsubscribe/{token}/pause", data={"pause": "4", "csrf": csrf[1]})
    assert paused.status_code == 200 and "the next 4 issues will be skipped" in paused.text
    assert (status(engine, subscriber), pause_of(engine, subscriber)) == ("active", 4)
    too_long = client.post(f"/unsubscribe/{token}/pause", data={"pause": "40", "csrf": csrf[1]})
    assert too_long.status_code == 400 and pause_of(engine, subscriber) == 4


def test_one_click_still_unsubscribes_at_once_and_a_reader_who_left_is_offered_nothing(
        engine: Engine, client: TestClient) -> None:
    seed(engine)
    subscriber, token = token_for(engine, "design1@example.com")
    answer = client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"}, follow_redirects=False)
    assert answer.status_code == 200 and status(engine, subscriber) == "unsubscribed"
    page = client.get(f"/unsubscribe/{token}").text
    assert "Pause instead" not in page and "fewer categories" not in page
