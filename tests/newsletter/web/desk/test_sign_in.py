"""Signing in and out of the desk: server-side sessions, pauses per name, limits per address, rehashing."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from newsletter import editors
from newsletter.clock import ManualClock
from newsletter.config import Settings
from newsletter.editor_sessions import open_sessions
from newsletter.providers.memory import MemoryProvider
from newsletter.web.app import create_app
from newsletter.web.desk.auth import COOKIE, Gate
from tests.newsletter.web.desk.test_issue_page import FAST

PASSWORD = "correct horse battery"


@pytest.fixture
def clock() -> ManualClock:
    """A clock the test moves by hand."""
    return ManualClock(datetime(2026, 11, 24, 9, 0, tzinfo=UTC))


@pytest.fixture
def app(engine: Engine, database_url: str, make_settings: Callable[..., Settings], clock: ManualClock) -> FastAPI:
    editors.add_editor(engine, "ann", PASSWORD, cost=FAST)
    settings = make_settings(database_url=database_url, trusted_proxies="10.0.0.0/8")
    return create_app(settings, provider=MemoryProvider(), gate=lambda site: Gate(site, clock=clock, cost=FAST))


@pytest.fixture
def visitor(app: FastAPI) -> Iterator[Callable[[str], TestClient]]:
    """Browsers connecting from the given address, all on the same app."""
    made: list[TestClient] = []

    def make(address: str) -> TestClient:
        # Entered, so that the app's lifespan runs and its engine is disposed when the test ends.
        made.append(TestClient(app, base_url="https://testserver", client=(address, 50000)).__enter__())
        return made[-1]
    yield make
    for client in made:
        client.__exit__(None, None, None)


def sign_in(client: TestClient, name: str = "ann", password: str = PASSWORD, **headers: str) -> Any:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', client.get("/editor/login").text)
    assert match
    return client.post("/editor/login", data={"name": name, "password": password, "csrf": match[1]},
                       headers=headers, follow_redirects=False)


def alert(page: Any) -> str:
    match = re.search(r'role="alert">([^<]*)<', page.text)
    assert match, page.text
    return match[1]


def test_signing_out_ends_that_session_on_the_server(visitor: Callable[[str], TestClient], engine: Engine,
                                                     clock: ManualClock) -> None:
    laptop, phone = visitor("198.51.100.1"), visitor("198.51.100.2")
    assert sign_in(laptop).status_code == 303 and sign_in(phone).status_code == 303
    old = laptop.cookies[COOKIE]
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', laptop.get("/editor").text)
    assert match
    assert laptop.post("/editor/logout", data={"csrf": match[1]}, follow_redirects=False).status_code == 303
    replay = visitor("198.51.100.1")
    replay.cookies.set(COOKIE, old, domain="testserver", path="/editor")
    assert replay.get("/editor", follow_redirects=False).headers["location"] == "/editor/login"
    assert phone.get("/editor", follow_redirects=False).status_code == 200  # only that device signed out
    assert open_sessions(engine, "ann", now=clock.now()) == 1


def test_a_session_ends_after_its_hours(visitor: Callable[[str], TestClient], clock: ManualClock) -> None:
    laptop = visitor("198.51.100.1")
    sign_in(laptop)
    clock.advance(timedelta(hours=11, minutes=59))
    assert laptop.get("/editor", follow_redirects=False).status_code == 200
    clock.advance(timedelta(minutes=2))
    assert laptop.get("/editor", follow_redirects=False).headers["location"] == "/editor/login"


def test_failures_from_many_addresses_pause_the_name_for_a_bounded_time(
        visitor: Callable[[str], TestClient], clock: ManualClock) -> None:
    answers = [sign_in(visitor(f"203.0.113.{i}"), password=f"guess number {i}") for i in range(5)]
    assert [a.status_code for a in answers] == [401, 401, 401, 401, 429]
    assert "try again in 1 minute." in alert(answers[-1])
    right = sign_in(visitor("192.0.2.200"))  # the editor, from elsewhere, with the right password
    assert right.status_code == 429 and COOKIE not in right.cookies and "paused" in alert(right)
    pauses = []
    for i in range(8):  # each failure after a pause doubles the next one, up to a ceiling
        clock.advance(timedelta(seconds=pauses[-1] * 60 + 1 if pauses else 61))
        page = sign_in(visitor(f"203.0.113.{50 + i}"), password="still guessing")
        pauses.append(int(re.findall(r"try again in (\d+) minute", alert(page))[0]))
    assert pauses == [2, 4, 8, 15, 15, 15, 15, 15]
    clock.advance(timedelta(minutes=10))
    assert sign_in(visitor("192.0.2.200")).status_code == 429  # still paused: the right password is not tried
    clock.advance(timedelta(minutes=5, seconds=1))
    assert sign_in(visitor("192.0.2.200")).status_code == 303


def test_a_pause_reads_the_same_for_a_name_that_is_no_editor(visitor: Callable[[str], TestClient]) -> None:
    for name in ("ann", "nobody"):
        pages = [sign_in(visitor(f"203.0.113.{i}"), name=name, password="wrong password") for i in range(5)]
        assert [p.status_code for p in pages] == [401, 401, 401, 401, 429]
        assert alert(pages[0]) == "That name and password do not match an editor."
        assert alert(pages[-1]) == ("Too many failed sign-ins under this name. Sign-in under it is paused; try again "
                                    "in 1 minute.")


def test_failures_are_forgotten_after_a_quiet_hour_and_after_a_success(
        visitor: Callable[[str], TestClient], clock: ManualClock) -> None:
    for _ in range(4):
        assert sign_in(visitor("203.0.113.1"), password="wrong password").status_code == 401
    clock.advance(timedelta(hours=1, seconds=1))
    assert sign_in(visitor("203.0.113.2"), password="wrong password").status_code == 401  # counted from one again
    for _ in range(3):
        sign_in(visitor("203.0.113.3"), password="wrong password")
    assert sign_in(visitor("203.0.113.4")).status_code == 303
    assert sign_in(visitor("203.0.113.5"), password="wrong password").status_code == 401


def test_the_limit_per_address_believes_forwarded_for_only_from_trusted_proxies(
        visitor: Callable[[str], TestClient]) -> None:
    outsider = visitor("198.51.100.9")  # not in NEWSLETTER_TRUSTED_PROXIES: its header is a forgery
    codes = [sign_in(outsider, name=f"n{i}", **{"X-Forwarded-For": f"192.0.2.{i}"}).status_code for i in range(11)]
    assert codes == [401] * 10 + [429]
    proxy = visitor("10.0.0.2")  # trusted: each visitor behind it has their own limit
    codes = [sign_in(proxy, name=f"m{i}", **{"X-Forwarded-For": "192.0.2.77"}).status_code for i in range(11)]
    assert codes == [401] * 10 + [429] and "from your address" in alert(sign_in(proxy, **{"X-Forwarded-For": "192.0.2.77"}))
    assert sign_in(proxy, **{"X-Forwarded-For": "192.0.2.78"}).status_code == 303


def test_a_sign_in_with_an_older_cheaper_hash_stores_one_at_the_current_cost(
        engine: Engine, database_url: str, make_settings: Callable[..., Settings]) -> None:
    editors.add_editor(engine, "bea", PASSWORD, cost=FAST)
    stronger = editors.Cost(2**11, 8, 1)
    app = create_app(make_settings(database_url=database_url), provider=MemoryProvider(),
                     gate=lambda site: Gate(site, cost=stronger))
    with TestClient(app, base_url="https://testserver") as phone, TestClient(app, base_url="https://testserver") as laptop:
        assert sign_in(phone, name="bea").status_code == 303  # verified at the old cost, then hashed again
        with Session(engine) as session:
            stored = editors.password_hash_of(session, "bea", None)
        assert stored is not None and editors.cost_of(stored) == stronger and editors.verify_password(PASSWORD, stored)
        assert phone.get("/editor", follow_redirects=False).status_code == 200  # same password: the session stays
        assert sign_in(laptop, name="bea").status_code == 303
        with Session(engine) as session:
            assert editors.password_hash_of(session, "bea", None) == stored  # at the current cost: left alone

