"""Sign up, confirm from the outbox, change preferences: in Debian's Chromium against a live server."""

from __future__ import annotations

import email
import re
from collections.abc import Callable
from email import policy
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from newsletter.catalog.importer import import_files
from newsletter.config import Settings
from subscribers.models import Subscriber
from tests.conftest import FIXTURE_PAGES

pytestmark = pytest.mark.browser


def test_sign_up_confirm_and_change_preferences(engine: Engine, live_site: tuple[str, Path], browser: Any) -> None:
    base, outbox = live_site
    import_files(engine, sorted(FIXTURE_PAGES.glob("*.txt")), published=__import__("datetime").date(2026, 11, 18))
    page = browser.new_page(viewport={"width": 375, "height": 800})
    page.goto(f"{base}/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.get_by_label("Your email address").fill("reader@example.org")
    page.get_by_label("Design").check()
    page.get_by_role("button", name="Subscribe").click()
    page.get_by_role("heading", name="Check your inbox").wait_for()

    from tests.newsletter.web.test_reader_unsubscribe_browser import mail_in

    eml = mail_in(outbox, "*reader@example.org.eml")
    message = email.message_from_bytes(eml.read_bytes(), policy=policy.default)
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    link = re.search(r"Confirm: (\S+)", text)
    assert link is not None and link[1].startswith(base + "/confirm/")
    page.goto(link[1])  # opening the link shows a button and changes nothing: mail scanners open links too
    page.get_by_role("heading", name="Confirm your subscription").wait_for()
    with Session(engine) as session:
        assert session.exec(select(Subscriber.status).where(Subscriber.email == "reader@example.org")).one() == "pending"
    page.get_by_role("button", name="Confirm my subscription").click()
    page.get_by_role("heading", name="You're in").wait_for()
    assert "Design" in page.content()

    with Session(engine) as session:
        row = session.exec(select(Subscriber).where(Subscriber.email == "reader@example.org")).one()
        assert row.status == "active" and row.categories == "Design"
        assert row.id is not None
    from subscribers.tokens import Signer
    from tests.newsletter.web.helpers import SECRET

    page.goto(f"{base}/preferences/{Signer(SECRET).mint('manage', row.id)}")
    page.get_by_label("Writing").check()
    page.get_by_label("Pause").select_option("3")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("status").filter(has_text="Saved: you now get Design and Writing; the next 3 issues will be skipped.").wait_for()
    with Session(engine) as session:
        saved = session.exec(select(Subscriber).where(Subscriber.email == "reader@example.org")).one()
    assert (saved.categories, saved.pause_remaining) == ("Design,Writing", 3)
    page.close()


@pytest.fixture
def live_site(engine: Engine, database_url: str, make_settings: Callable[..., Settings], tmp_path: Path) -> Any:
    from tests.newsletter.web.test_reader_unsubscribe_browser import serve

    outbox = tmp_path / "outbox"
    with serve(make_settings, database_url, outbox) as base:
        yield base, outbox
