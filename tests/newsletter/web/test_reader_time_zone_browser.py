"""The sign-up form reads the browser's time zone by its one hash-allowed script; without JavaScript, none."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from subscribers.models import Subscriber
from tests.newsletter.web.test_reader_signup_browser import live_site as live_site  # the fixture

pytestmark = pytest.mark.browser


def sign_up(browser: Any, base: str, address: str, **context: Any) -> list[str]:
    """Sign ``address`` up in a fresh browser context; returns the console's CSP complaints."""
    page = browser.new_context(**context).new_page()
    complaints: list[str] = []
    page.on("console", lambda message: complaints.append(message.text) if "Content Security" in message.text else None)
    page.goto(f"{base}/")
    page.get_by_label("Your email address").fill(address)
    page.get_by_role("button", name="Subscribe").click()
    page.get_by_role("heading", name="Check your inbox").wait_for()
    page.context.close()
    return complaints


def zone_of(engine: Engine, address: str) -> str | None:
    with Session(engine) as session:
        return session.exec(select(Subscriber.time_zone).where(Subscriber.email == address)).one()


def test_the_browser_zone_is_stored_and_without_javascript_the_publications_is_used(
        engine: Engine, live_site: tuple[str, Path], browser: Any) -> None:
    base, _ = live_site
    assert sign_up(browser, base, "kathmandu@example.org", timezone_id="Asia/Kathmandu") == []  # the CSP allows it
    # Chromium's ICU still names Nepal by its old tzdata alias; zoneinfo knows both, with the same offset.
    assert zone_of(engine, "kathmandu@example.org") in {"Asia/Kathmandu", "Asia/Katmandu"}
    assert sign_up(browser, base, "nojs@example.org", timezone_id="Asia/Kolkata", java_script_enabled=False) == []
    assert zone_of(engine, "nojs@example.org") is None
