"""Voting from a real sent email in Debian's Chromium against a live server: the link opens a page with a button,
pressing it records the vote, voting again with the other link changes it."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from newsletter.config import Settings
from newsletter.providers.memory import MemoryProvider
from newsletter.web.app import create_app
from tests.newsletter.vote_support import DESIGN, message_to, send_first_issue, stored_votes
from tests.newsletter.web.helpers import SECRET, free_port, uvicorn_serving

pytestmark = pytest.mark.browser


@pytest.fixture
def live(engine: Engine, database_url: str, make_settings: Callable[..., Settings],
         tmp_path: Path) -> Iterator[tuple[str, MemoryProvider]]:
    """Week 47's issue sent with vote links pointing at a live app on a free port, and that app."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = make_settings(database_url=database_url, secret_key=SECRET, public_url=base,
                             outbox_dir=tmp_path / "outbox")
    memory = send_first_issue(engine, settings)
    with uvicorn_serving(create_app(settings), port):
        yield base, memory


def html_links(message_html: str, base: str) -> dict[str, str]:
    """The email's HTML vote links (as a mail client would open them) by their aria-label."""
    found = re.finditer(r'<a href="([^"]+)" aria-label="([^"]+)"', message_html)
    return {html.unescape(m[2]): html.unescape(m[1]) for m in found if m[1].startswith(f"{base}/vote/")}


def test_a_reader_votes_from_the_email_and_changes_the_vote(engine: Engine, live: tuple[str, MemoryProvider],
                                                            browser: Any, tmp_path: Path) -> None:
    base, memory = live
    message = message_to(memory, "all0@example.com")
    links = html_links(message.html, base)
    assert set(links) >= {"Iconsmith: Ship", "Iconsmith: Skip", "Draftsmith: Ship", "Lede: Skip"}
    page = browser.new_page(viewport={"width": 375, "height": 700})
    page.goto(links["Iconsmith: Ship"])
    page.get_by_role("heading", name="Your call on Iconsmith: Ship").wait_for()
    button = page.get_by_role("button", name="Vote Ship")
    box = button.bounding_box()
    assert box is not None and box["height"] >= 44
    assert stored_votes(engine) == []  # opening the link is not voting
    button.click()
    page.get_by_text("Vote recorded.").wait_for()
    page.screenshot(path=str(tmp_path / "vote-recorded.png"), full_page=True)
    reader = stored_votes(engine)[0][0]
    assert stored_votes(engine) == [(reader, *DESIGN, "ship", 1)]
    assert page.get_by_role("link", name="Read the comparison: Iconsmith vs Huewise").get_attribute("href") == \
        "https://site.example.com/compare/iconsmith-vs-huewise"
    page.goto(links["Iconsmith: Skip"])
    page.get_by_text("You voted Ship before; voting again changes it.").wait_for()
    page.get_by_role("button", name="Vote Skip").click()
    page.get_by_role("heading", name="Your call on Iconsmith: Skip").wait_for()
    page.get_by_text("Vote recorded.").wait_for()
    assert stored_votes(engine) == [(reader, *DESIGN, "skip", 1)]
    page.close()
