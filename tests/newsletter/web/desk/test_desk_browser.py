"""The editor's desk in Debian's Chromium against a live server: sign in, edit the note, see the preview change,
send a test, approve."""

from __future__ import annotations

import email
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from newsletter import editors, issues
from newsletter.config import Settings
from newsletter.db import session_scope
from tests.newsletter.test_issues import build, seed
from tests.newsletter.web.test_reader_unsubscribe_browser import serve

pytestmark = pytest.mark.browser


def test_an_editor_signs_in_edits_the_note_sends_a_test_and_approves(
        engine: Engine, browser: Any, make_settings: Callable[..., Settings], database_url: str,
        tmp_path: Path) -> None:
    build(engine, seed(engine))
    editors.add_editor(engine, "ann", "correct horse battery")
    outbox = tmp_path / "outbox"
    with serve(make_settings, database_url, outbox) as base:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{base}/editor")
        page.get_by_label("Name").fill("ann")
        page.get_by_label("Password").fill("correct horse battery")
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("link", name="Iconsmith vs Huewise, and 1 more verdict").click()
        page.get_by_role("heading", name="Checks before sending").wait_for()

        desktop = page.frame_locator("#preview-desktop")
        desktop.get_by_text("Iconsmith vs Huewise").first.wait_for()
        assert desktop.locator("strong", has_text="Editor's pick").count() == 0
        assert round(page.locator("#preview-phone").bounding_box()["width"]) in (375, 377)  # 375 px plus borders
        page.get_by_label("Editor's note (Markdown)").fill("**Editor's pick:** the icon tools are worth a look.")
        page.get_by_role("button", name="Save and re-render").click()
        page.get_by_text("Saved; the previews below are re-rendered.").wait_for()
        desktop.locator("strong", has_text="Editor's pick").wait_for()
        page.frame_locator("#preview-phone").locator("strong", has_text="Editor's pick").wait_for()
        assert "Editor's pick: the icon tools" in page.locator("#text-version").inner_text()

        page.get_by_label("Addresses").fill("ed@example.com")
        page.get_by_role("button", name="Send test").click()
        page.get_by_text("Test sent.").wait_for()
        (sent,) = outbox.glob("*ed@example.com.eml")
        message = email.message_from_bytes(sent.read_bytes())
        assert message["Subject"].startswith("[Test] ")
        html = next(p for p in message.walk() if p.get_content_type() == "text/html").get_payload(decode=True)
        assert b"<strong>Editor&#x27;s pick:</strong>" in html or b"<strong>Editor's pick:</strong>" in html

        page.get_by_role("button", name="Approve", exact=True).click()
        page.get_by_text("Approved.").wait_for()
        assert page.locator("#status").inner_text() == "approved"
        page.screenshot(path=str(tmp_path / "desk.png"), full_page=True)
        page.close()
    with session_scope(engine) as session:
        issue = issues.get_issue(session, 1)
        assert (issue.status, issue.approved_by) == ("approved", "ann")
