"""Every public page, and the desk, in Debian's Chromium: axe-core finds no serious or critical violation at
1280 px and 375 px, light and emulated dark, and no page scrolls sideways on a phone."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from newsletter import editors
from newsletter.config import Settings
from newsletter.providers.memory import MemoryProvider
from newsletter.web.app import create_app
from subscribers import signup
from subscribers.tokens import Signer
from tests import axe
from tests.newsletter.test_dispatch import send
from tests.newsletter.test_issues import build, seed
from tests.newsletter.vote_support import DESIGN, message_to, send_first_issue, vote_links
from tests.newsletter.web.helpers import SECRET, free_port, uvicorn_serving
from tests.newsletter.web.test_app import token_for

pytestmark = pytest.mark.browser
SIZES = ({"width": 1280, "height": 900}, {"width": 375, "height": 800})
SCHEMES = ("light", "dark")
PASSWORD = "correct horse battery"
# How many elements of a document have a dark, opaque background.
DARK_BOXES = """body => [...body.ownerDocument.querySelectorAll('*')].filter(e => {
    const c = (getComputedStyle(e).backgroundColor.match(/[0-9.]+/g) || []).map(Number);
    return c.length >= 3 && (c.length < 4 || c[3] > 0) && c[0] + c[1] + c[2] < 200; }).length"""


@pytest.fixture(scope="module")
def axe_script() -> Path:
    return axe.install()


@contextmanager
def serving(engine: Engine, database_url: str, make_settings: Callable[..., Settings], tmp_path: Path, *,
            sent: bool) -> Iterator[str]:
    """A live app with readers, an editor and issue 1 (``sent`` or left a draft)."""
    directory = seed(engine)
    build(engine, directory)
    if sent:
        send(engine, directory, MemoryProvider())
    editors.add_editor(engine, "ann", PASSWORD, cost=editors.Cost(2**10, 8, 1))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = make_settings(database_url=database_url, secret_key=SECRET, public_url=base,
                             outbox_dir=tmp_path / "outbox", signup_rate_limit=1000)
    with uvicorn_serving(create_app(settings), port):
        yield base


@pytest.fixture
def site(engine: Engine, database_url: str, make_settings: Callable[..., Settings], tmp_path: Path) -> Iterator[str]:
    with serving(engine, database_url, make_settings, tmp_path, sent=True) as base:
        yield base


@pytest.fixture
def draft_site(engine: Engine, database_url: str, make_settings: Callable[..., Settings],
               tmp_path: Path) -> Iterator[str]:
    with serving(engine, database_url, make_settings, tmp_path, sent=False) as base:
        yield base


def reader_pages(engine: Engine, base: str) -> dict[str, str]:
    """The public pages a GET reaches, by name."""
    _, unsubscribe = token_for(engine, "design1@example.com")
    _, manage = token_for(engine, "design1@example.com", "manage")
    row = signup.request_subscription(engine, "new.reader@example.org", categories=[], free_only=False,
                                      consent=signup.Consent("127.0.0.1", "test"), resend_after=timedelta(0),
                                      secret=SECRET)
    assert row is not None and row.id is not None
    confirm = Signer(SECRET).mint_confirm(row.id, row.email)
    signup.confirm(engine, row.id, row.email, consent=signup.Consent("127.0.0.1", "test"))
    return {"sign-up": f"{base}/subscribe", "confirmed": f"{base}/confirm/{confirm}",
            "preferences": f"{base}/preferences/{manage}", "unsubscribe": f"{base}/unsubscribe/{unsubscribe}",
            "archive": f"{base}/archive", "web version": f"{base}/archive/1", "404": f"{base}/no/such/page",
            "missing issue": f"{base}/archive/2"}


def check(page: Any, script: Path, name: str, width: int, scheme: str) -> list[str]:
    """What is wrong with the loaded page: axe-core's blocking violations, and sideways scrolling on a phone."""
    found = [f"{name} at {width} px, {scheme}: {line}" for line in axe.violations(page, script)]
    scroll = page.evaluate("document.scrollingElement.scrollWidth")
    if scroll > width:
        found.append(f"{name} at {width} px, {scheme}: {scroll} px wide")
    return found


def test_public_pages_pass_axe_light_and_dark_on_desktop_and_phone(
        engine: Engine, site: str, browser: Any, axe_script: Path, tmp_path: Path) -> None:
    pages = reader_pages(engine, site)
    problems: list[str] = []
    for size in SIZES:
        for scheme in SCHEMES:
            context = browser.new_context(viewport=size, color_scheme=scheme, bypass_csp=True)
            page = context.new_page()
            for name, url in pages.items():
                page.goto(url)
                problems += check(page, axe_script, name, size["width"], scheme)
                if name in ("web version", "sign-up"):
                    page.screenshot(path=str(tmp_path / f"{name}-{size['width']}-{scheme}.png"), full_page=True)
            page.goto(pages["sign-up"])
            page.get_by_label("Your email address").fill("someone@example.org")
            page.get_by_role("button", name="Subscribe").click()
            page.get_by_role("heading", name="Check your inbox").wait_for()
            problems += check(page, axe_script, "check inbox", size["width"], scheme)
            context.close()
    assert not problems, "\n".join(problems)


def test_desk_pages_fit_a_phone_and_pass_axe(draft_site: str, browser: Any, axe_script: Path,
                                             tmp_path: Path) -> None:
    site = draft_site
    context = browser.new_context(viewport={"width": 375, "height": 800}, bypass_csp=True)
    page = context.new_page()
    page.goto(f"{site}/editor")
    problems = check(page, axe_script, "sign-in", 375, "light")
    page.get_by_label("Name").fill("ann")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Issues").wait_for()
    problems += check(page, axe_script, "issues", 375, "light")
    page.goto(f"{site}/editor/issues/1")
    problems += check(page, axe_script, "issue 1", 375, "light")
    dark, light = (page.frame_locator(f"#preview-{name}").locator("body").evaluate(DARK_BOXES)
                   for name in ("dark", "phone"))
    assert dark > light, (dark, light)  # the dark preview draws the digest's dark-mode rules
    page.get_by_role("button", name="Cancel issue…").click()
    page.get_by_role("heading", name="Cancel issue 1?").wait_for()
    problems += check(page, axe_script, "cancel confirmation", 375, "light")
    page.get_by_role("link", name="No, keep it").click()
    assert page.locator("#status").inner_text() == "draft"  # the confirmation page cancelled nothing
    page.set_viewport_size({"width": 1280, "height": 900})
    page.screenshot(path=str(tmp_path / "desk-issue-1280.png"), full_page=True)
    context.close()
    assert not problems, "\n".join(problems)


def test_vote_pages_pass_axe_light_and_dark_on_desktop_and_phone(
        engine: Engine, database_url: str, make_settings: Callable[..., Settings], browser: Any, axe_script: Path,
        tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = make_settings(database_url=database_url, secret_key=SECRET, public_url=base)
    links = vote_links(message_to(send_first_issue(engine, settings), "all0@example.com"))
    problems: list[str] = []
    with uvicorn_serving(create_app(settings), port):
        for size in SIZES:
            for scheme in SCHEMES:
                context = browser.new_context(viewport=size, color_scheme=scheme, bypass_csp=True)
                page = context.new_page()
                page.goto(base + links[(*DESIGN, "ship")])
                problems += check(page, axe_script, "vote", size["width"], scheme)
                page.get_by_role("button", name="Vote Ship").click()
                page.get_by_text("Vote recorded.").wait_for()
                problems += check(page, axe_script, "vote recorded", size["width"], scheme)
                page.goto(base + links[(*DESIGN, "ship")].replace("/ship/", "/maybe/"))
                problems += check(page, axe_script, "vote refused", size["width"], scheme)
                page.goto(f"{base}/vote/{DESIGN[0]}/{DESIGN[1]}/ship/preview")
                problems += check(page, axe_script, "vote preview", size["width"], scheme)
                context.close()
    assert not problems, "\n".join(problems)
