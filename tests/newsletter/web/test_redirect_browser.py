"""Following a link of a real sent email in Debian's Chromium: through the app's redirect, to the site, counted."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from newsletter import editors
from newsletter.config import Settings
from newsletter.web.app import create_app
from tests.newsletter.clicking import clicks, directory_for, sent
from tests.newsletter.web.helpers import SECRET, free_port, uvicorn_serving
from tests.newsletter.web.test_pages_axe_browser import PASSWORD, check

pytestmark = pytest.mark.browser


class SitePage(BaseHTTPRequestHandler):
    """The site, as far as the test needs it: every path is a comparison page naming its path."""

    def do_GET(self) -> None:
        body = f"<!doctype html><title>Site</title><h1>Comparison page {self.path}</h1>".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        """Quiet: the test says what matters."""


@contextmanager
def site() -> Iterator[str]:
    """A stand-in for the site on 127.0.0.1; its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), SitePage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/compare/"
    finally:
        server.shutdown()
        server.server_close()


def test_a_reader_follows_a_link_of_their_email_through_the_redirect(
        engine: Engine, database_url: str, make_settings: Callable[..., Settings], browser: Any, axe: Path) -> None:
    editors.add_editor(engine, "ann", PASSWORD, cost=editors.Cost(2**10, 8, 1))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with site() as site_url:
        outbox = sent(engine, track=True, public_url=base, site_url=site_url)
        message = next(m for m in outbox.outbox if m.to == "design0@example.com")
        settings = make_settings(database_url=database_url, secret_key=SECRET, public_url=base, site_url=site_url,
                                 track_readers=True)
        app = create_app(settings)
        with uvicorn_serving(app, port):
            page = browser.new_page()
            page.set_content(message.html)
            page.get_by_role("link", name="Read Iconsmith vs Huewise →").click()
            page.get_by_role("heading", name="Comparison page /compare/iconsmith-vs-huewise").wait_for()
            assert page.url == site_url + "iconsmith-vs-huewise"
            page.close()
            app.state.wiring.clicks.flush()
            problems = desk_page(browser, base, axe)
    reader = directory_for(engine).find("design0@example.com")
    assert reader is not None
    assert [(c.subscriber_id, c.first_on_link, c.first_in_issue) for c in clicks(engine)] == [(reader[0].id, True, True)]
    assert not problems, "\n".join(problems)


def desk_page(browser: Any, base: str, script: Path) -> list[str]:
    """The issue's figures on the desk at phone width: the click shows in table and chart; axe's findings."""
    context = browser.new_context(viewport={"width": 375, "height": 800}, bypass_csp=True)
    page = context.new_page()
    page.goto(f"{base}/editor/login")
    page.get_by_label("Name").fill("ann")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Issues").wait_for()
    page.goto(f"{base}/editor/issues/1")
    chart = page.get_by_role("img", name="Issue 1: clicks per comparison")
    assert chart.is_visible()
    assert page.locator("#clicks tbody tr").first.inner_text().split() == ["Iconsmith", "vs", "Huewise", "1", "1"]
    problems = check(page, script, "issue 1 with clicks", 375, "light")
    context.close()
    return problems
