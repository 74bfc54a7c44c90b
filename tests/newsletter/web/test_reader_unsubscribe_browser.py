"""Unsubscribing with the button in Debian's Chromium, on a phone-sized screen, against a live server."""

from __future__ import annotations

import email
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email import policy
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from newsletter.config import Settings
from newsletter.web.app import create_app
from tests.newsletter.test_issues import seed
from tests.newsletter.web.helpers import free_port, uvicorn_serving
from tests.newsletter.web.test_app import SECRET, status, token_for

pytestmark = pytest.mark.browser


@contextmanager
def serve(make_settings: Callable[..., Settings], database_url: str, outbox: Path) -> Iterator[str]:
    """The app under uvicorn on a free port, with the file provider writing to ``outbox``."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = make_settings(database_url=database_url, secret_key=SECRET, public_url=base, outbox_dir=outbox)
    with uvicorn_serving(create_app(settings), port):
        yield base


def mail_in(outbox: Path, pattern: str = "*.eml", within: float = 10.0) -> Path:
    """The one message in ``outbox`` matching ``pattern``, waiting for it: confirmations go out after the answer."""
    deadline = time.monotonic() + within
    while not (found := sorted(outbox.glob(pattern))) and time.monotonic() < deadline:
        time.sleep(0.02)  # the mail thread is the server's own: a file appearing is the only signal there is
    assert len(found) == 1, found
    return found[0]


@pytest.fixture
def live(database_url: str, make_settings: Callable[..., Settings], tmp_path: Path) -> Iterator[str]:
    with serve(make_settings, database_url, tmp_path / "outbox") as base:
        yield base


def test_unsubscribe_with_the_button_on_a_phone(engine: Engine, live: str, browser: Any, tmp_path: Path) -> None:
    seed(engine)
    subscriber, token = token_for(engine, "design2@example.com")
    page = browser.new_page(viewport={"width": 375, "height": 700})
    page.goto(f"{live}/unsubscribe/{token}")
    assert status(engine, subscriber) == "active"
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.keyboard.press("Tab")  # the button is reachable by keyboard
    assert page.evaluate("document.activeElement.textContent.trim()") == "Unsubscribe"
    box = page.get_by_role("button", name="Unsubscribe").bounding_box()
    assert box is not None and box["height"] >= 44  # a comfortable touch target
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="You're unsubscribed").wait_for()
    page.screenshot(path=str(tmp_path / "unsubscribed.png"), full_page=True)
    assert status(engine, subscriber) == "unsubscribed"
    page.get_by_role("button", name="Subscribe again").click()
    page.get_by_role("heading", name="Subscribe again?").wait_for()  # a GET shows the consent and a button
    assert status(engine, subscriber) == "unsubscribed"
    page.get_by_role("button", name="Subscribe again").click()
    page.get_by_role("heading", name="Check your inbox").wait_for()
    assert status(engine, subscriber) == "pending"  # back only once the new confirmation is clicked
    mail = mail_in(tmp_path / "outbox")
    body = email.message_from_bytes(mail.read_bytes(), policy=policy.default).get_body(("plain",))
    assert body is not None
    link = re.search(rf"{re.escape(live)}/confirm/\S+", body.get_content())
    assert link, body.get_content()
    page.goto(link[0])
    page.get_by_role("heading", name="Confirm your subscription").wait_for()
    assert status(engine, subscriber) == "pending"  # opening the link is not confirming it
    page.get_by_role("button", name="Confirm my subscription").click()
    page.get_by_role("heading", name="You're in").wait_for()
    assert status(engine, subscriber) == "active"
    page.close()
