"""Unsubscribe pages and RFC 8058 one-click, through the real app on both databases."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from newsletter.config import Settings
from newsletter.models import DeliveryRow
from subscribers.models import Subscriber
from subscribers.tokens import Signer
from subscribers.web import create_app
from tests.conftest import TEST_SECRET_KEY
from tests.newsletter.test_issues import build, seed

SECRET = TEST_SECRET_KEY


@pytest.fixture
def client(engine: Engine, database_url: str, make_settings: Callable[..., Settings]) -> Iterator[TestClient]:
    app = create_app(make_settings(database_url=database_url, secret_key=SECRET))
    with TestClient(app) as running:
        yield running


def token_for(engine: Engine, address: str, purpose: str = "unsubscribe") -> tuple[int, str]:
    with Session(engine) as session:
        row = session.exec(select(Subscriber).where(Subscriber.email == address)).one()
    assert row.id is not None
    return row.id, Signer(SECRET).mint(purpose, row.id)  # type: ignore[arg-type]


def status(engine: Engine, subscriber_id: int) -> str:
    with Session(engine) as session:
        row = session.get(Subscriber, subscriber_id)
        assert row is not None
        return row.status


def test_get_shows_a_button_and_changes_nothing(engine: Engine, client: TestClient) -> None:
    seed(engine)
    subscriber, token = token_for(engine, "design1@example.com")
    for _ in range(3):  # link scanners fetch more than once
        page = client.get(f"/unsubscribe/{token}")
        assert page.status_code == 200
    assert '<form method="post" action="/unsubscribe/' in page.text and "<button" in page.text
    assert "d••••••@example.com" in page.text and "design1@example.com" not in page.text
    assert status(engine, subscriber) == "active"


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_one_click_post_unsubscribes_at_once_without_redirect(engine: Engine, client: TestClient, encoding: str) -> None:
    directory = seed(engine)
    build(engine, directory)
    subscriber, token = token_for(engine, "all2@example.com")
    if encoding == "urlencoded":
        answer = client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"}, follow_redirects=False)
    else:
        answer = client.post(f"/unsubscribe/{token}", files={"List-Unsubscribe": (None, "One-Click")},
                             follow_redirects=False)
    assert answer.status_code == 200 and "You're unsubscribed" in answer.text
    assert status(engine, subscriber) == "unsubscribed"
    with Session(engine) as session:
        row = session.get(Subscriber, subscriber)
        assert row is not None and row.unsubscribe_channel == "one-click"
        delivery = session.exec(select(DeliveryRow).where(DeliveryRow.subscriber_id == subscriber)).one()
    assert delivery.status == "dropped"  # the issue being sent skips them
    assert client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"}).status_code == 200  # again


def test_resubscribe_from_the_page(engine: Engine, client: TestClient) -> None:
    seed(engine)
    subscriber, token = token_for(engine, "writing@example.com")
    page = client.post(f"/unsubscribe/{token}", data={"confirm": "yes"})
    assert f'action="/resubscribe/{token}"' in page.text
    assert status(engine, subscriber) == "unsubscribed"
    assert client.post(f"/resubscribe/{token}").status_code == 400  # no CSRF token: nothing changes
    offer = client.get(f"/resubscribe/{token}")
    assert offer.status_code == 200 and "Subscribe again" in offer.text
    assert status(engine, subscriber) == "unsubscribed"  # back only through a new confirmation (test_erased)


def test_bad_or_foreign_tokens_get_a_friendly_page(engine: Engine, client: TestClient) -> None:
    seed(engine)
    subscriber, manage = token_for(engine, "free@example.com", "manage")
    for url in (f"/unsubscribe/{manage}", "/unsubscribe/garbage.token", f"/unsubscribe/{manage[:-3]}xyz"):
        for answer in (client.get(url), client.post(url, data={"List-Unsubscribe": "One-Click"})):
            assert answer.status_code == 400 and "This link doesn't work" in answer.text
            assert "Traceback" not in answer.text
    assert status(engine, subscriber) == "active"


def test_security_headers(engine: Engine, client: TestClient) -> None:
    answer = client.get("/unsubscribe/whatever")
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert answer.headers["referrer-policy"] == "no-referrer"
