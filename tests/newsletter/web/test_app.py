"""Unsubscribe pages and RFC 8058 one-click, through the real app on both databases."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from newsletter import migrate
from newsletter.config import Settings
from newsletter.db import make_engine
from newsletter.models import DeliveryRow
from newsletter.web.app import create_app
from newsletter.web.site import mask
from subscribers.models import Subscriber
from subscribers.tokens import Signer
from tests.conftest import TEST_SECRET_KEY
from tests.newsletter.test_issues import build, seed
from tests.newsletter.web.helpers import csrf, running

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
    assert delivery.status == "withdrawn"  # the issue being sent skips them
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


def headers_are_secure(answer: Any) -> None:
    assert answer.headers["x-content-type-options"] == "nosniff", answer.headers
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert answer.headers["referrer-policy"] == "no-referrer" and answer.headers["x-frame-options"] == "DENY"


def test_a_csrf_token_with_non_ascii_characters_is_an_expired_form(engine: Engine, database_url: str,
                                                                   make_settings: Callable[..., Settings]) -> None:
    seed(engine)
    _, manage = token_for(engine, "free@example.com", "manage")
    with running(make_settings, database_url) as (client, _):
        token = csrf(client, "/subscribe")
        for bad in ("é", token[:-1] + "é", "ü" * 64):
            signup = client.post("/subscribe", data={"csrf": bad, "email": "new@example.com"})
            assert signup.status_code == 400 and "Send a new link" in signup.text
            saved = client.post(f"/preferences/{manage}", data={"csrf": bad, "pause": "1"})
            assert saved.status_code == 400 and "The form expired" in saved.text
            headers_are_secure(saved)


def test_unknown_routes_get_the_sites_404_page(client: TestClient) -> None:
    for path in ("/nope", "/archive/abc", "/editor/issues/x", "/confirm", "/%C3%A9/..%2f"):
        answer = client.get(path)
        assert answer.status_code == 404 and answer.headers["content-type"].startswith("text/html"), path
        assert "Page not found" in answer.text and "<main>" in answer.text and "Weekly AI Tool Verdicts" in answer.text
        assert '{"detail"' not in answer.text
        headers_are_secure(answer)


def test_a_wrong_method_gets_a_page_with_the_headers(client: TestClient) -> None:
    answer = client.request("DELETE", "/subscribe")
    assert answer.status_code == 405 and answer.headers["content-type"].startswith("text/html")
    assert "GET" in answer.headers["allow"] and '{"detail"' not in answer.text
    headers_are_secure(answer)


def test_head_answers_wherever_get_does(engine: Engine, client: TestClient) -> None:
    seed(engine)
    _, manage = token_for(engine, "free@example.com", "manage")
    for path in ("/", "/subscribe", "/archive", "/archive.atom", "/archive/1", f"/preferences/{manage}",
                 "/unsubscribe/garbage", "/confirm/garbage", "/editor/login", "/nope"):
        got, head = client.get(path, follow_redirects=False), client.head(path, follow_redirects=False)
        assert head.status_code == got.status_code, path
        assert head.content == b"" and head.headers["content-type"] == got.headers["content-type"]
        headers_are_secure(head)
    assert client.head("/unsubscribe/garbage", follow_redirects=False).status_code == 400  # a HEAD changes nothing


def test_an_unexpected_failure_is_a_500_page_with_the_headers_and_no_traceback(
        tmp_path: Path, make_settings: Callable[..., Settings]) -> None:
    url = f"sqlite:///{tmp_path / 'broken.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    app = create_app(make_settings(database_url=url))
    with TestClient(app, raise_server_exceptions=False) as broken:
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE tool"))  # the database changes under the running app
        answer = broken.get("/subscribe")
    engine.dispose()
    assert answer.status_code == 500 and answer.headers["content-type"].startswith("text/html")
    assert "Something went wrong" in answer.text and "<main>" in answer.text
    assert "Traceback" not in answer.text and "OperationalError" not in answer.text and "no such" not in answer.text
    headers_are_secure(answer)


@pytest.mark.parametrize("public_url, hsts", [("https://app.example.com", True), ("http://localhost:8000", False)])
def test_hsts_only_when_served_over_https(engine: Engine, database_url: str, make_settings: Callable[..., Settings],
                                         public_url: str, hsts: bool) -> None:
    with running(make_settings, database_url, public_url=public_url) as (client, _):
        for answer in (client.get("/subscribe"), client.get("/nope"), client.request("DELETE", "/subscribe")):
            if hsts:
                assert answer.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
            else:
                assert "strict-transport-security" not in answer.headers


def test_one_click_for_a_reader_who_already_left_says_unsubscribed_and_changes_nothing(
        engine: Engine, client: TestClient) -> None:
    seed(engine)
    left = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    readers = {"bounced": "all0@example.com", "complained": "all1@example.com", "unsubscribed": "all2@example.com"}
    with Session(engine) as session:
        for state, address in readers.items():
            row = session.exec(select(Subscriber).where(Subscriber.email == address)).one()
            row.status, row.unsubscribed_at, row.unsubscribe_channel = state, left, "webhook"
        session.commit()
    for state, address in readers.items():
        subscriber, token = token_for(engine, address)
        for body in ({"List-Unsubscribe": "One-Click"}, {"confirm": "yes"}):
            answer = client.post(f"/unsubscribe/{token}", data=body)
            assert answer.status_code == 200 and "You're unsubscribed" in answer.text, state
            assert address not in answer.text and mask(address) not in answer.text  # nothing about the address
            assert "/resubscribe/" not in answer.text
        with Session(engine) as session:
            row = session.get(Subscriber, subscriber)
            assert row is not None and (row.status, row.unsubscribe_channel) == (state, "webhook")
            assert row.unsubscribed_at is not None and row.unsubscribed_at.replace(tzinfo=UTC) == left
