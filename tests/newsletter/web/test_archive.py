"""The public archive: sent issues only, the full web version with no personal links, an Atom feed."""

from __future__ import annotations

import re
from collections.abc import Callable
from xml.etree import ElementTree as ET

from sqlalchemy.engine import Engine

from newsletter.config import Settings
from newsletter.providers.memory import MemoryProvider
from tests.newsletter.test_dispatch import ENVELOPE, send
from tests.newsletter.test_issues import build, seed
from tests.newsletter.web.helpers import running

ATOM = "{http://www.w3.org/2005/Atom}"


def test_archive_shows_sent_issues_without_personal_links(engine: Engine, database_url: str,
                                                          make_settings: Callable[..., Settings]) -> None:
    directory = seed(engine)
    build(engine, directory)
    with running(make_settings, database_url) as (client, _):
        assert "No issue has been sent yet." in client.get("/archive").text
        assert client.get("/archive/1").status_code == 404  # a draft is not public
        provider = MemoryProvider()
        send(engine, directory, provider)
        listing = client.get("/archive")
        assert '<a href="/archive/1">#1: Iconsmith vs Huewise, and 1 more verdict</a>' in listing.text
        assert re.search(r"<time>\d{1,2} [A-Z][a-z]+ 20\d\d</time>", listing.text), listing.text  # not 2026-W47
        assert '<link rel="alternate" type="application/atom+xml"' in listing.text
        summary = re.search(r'<span class="summary">([^<]+)</span>', listing.text)
        assert summary and summary[1].strip(), listing.text
        web = client.get("/archive/1")
        assert web.status_code == 200 and "Iconsmith vs Huewise" in web.text and "Draftsmith vs Lede" in web.text
        assert "%%{" not in web.text and "/unsubscribe/" not in web.text and "/preferences/" not in web.text
        assert "View in your browser" not in web.text and "because you subscribed" not in web.text
        assert "Manage preferences" not in web.text and "Unsubscribe" not in web.text
        assert 'href="https://app.example.com/subscribe"' in web.text and ">Subscribe<" in web.text
        assert '<link rel="canonical" href="https://app.example.com/archive/1">' in web.text
        assert '<meta property="og:title" content="Iconsmith vs Huewise, and 1 more verdict">' in web.text
        assert '<meta name="twitter:card" content="summary">' in web.text and 'property="og:url"' in web.text
        assert web.text.count("<main>") == 1 and "<h1" in web.text
        assert "frame-ancestors 'none'" in web.headers["content-security-policy"]
        sent_link = ENVELOPE.web_url(1)
        assert any(sent_link in m.html for m in provider.outbox)  # every email's "view in browser" lands here
        feed = client.get("/archive.atom")
        assert feed.headers["content-type"].startswith("application/atom+xml")
        root = ET.fromstring(feed.content)
        (entry,) = root.findall(f"{ATOM}entry")
        assert entry.findtext(f"{ATOM}title") == "#1 (2026-W47): Iconsmith vs Huewise, and 1 more verdict"
        assert entry.find(f"{ATOM}link").get("href") == "https://app.example.com/archive/1"  # type: ignore[union-attr]
        assert root.findtext(f"{ATOM}updated", "").endswith("Z")
        content = entry.find(f"{ATOM}content")
        assert content is not None and content.get("type") == "html"
        assert "Draftsmith vs Lede" in (content.text or "") and "/unsubscribe/" not in (content.text or "")
        missing = client.get("/archive/99")
        assert missing.status_code == 404 and "Page not found" in missing.text and "unsubscribe" not in missing.text
        assert client.head("/archive/1").status_code == 200 and client.head("/archive.atom").status_code == 200


def test_issue_numbers_past_any_stored_one_are_not_found(engine: Engine, database_url: str,
                                                         make_settings: Callable[..., Settings]) -> None:
    with running(make_settings, database_url) as (client, _):
        for number in ("99999999999999999999999", str(2**63), str(2**31), "-9223372036854775809", "0", "1e3"):
            answer = client.get(f"/archive/{number}")
            assert answer.status_code == 404 and "Page not found" in answer.text, number
            assert client.head(f"/archive/{number}").status_code == 404


def test_the_sign_up_page_shows_the_latest_issue_or_a_sample_and_a_privacy_note(
        engine: Engine, database_url: str, make_settings: Callable[..., Settings]) -> None:
    directory = seed(engine)
    build(engine, directory)
    with running(make_settings, database_url) as (client, _):
        before = client.get("/subscribe").text
        assert "What an issue looks like" in before and 'href="/archive"' in before and 'id="privacy"' in before
        send(engine, directory, MemoryProvider())
        after = client.get("/").text
        assert "The latest issue" in after
        assert '<a href="https://app.example.com/archive/1">#1: Iconsmith vs Huewise, and 1 more verdict</a>' in after
        assert "never sold or shared" in after


def test_a_web_version_whose_comparisons_left_the_catalog_shows_the_email_as_sent(
        engine: Engine, database_url: str, make_settings: Callable[..., Settings]) -> None:
    from datetime import date

    from newsletter.catalog.importer import import_files
    from tests.conftest import FIXTURE_PAGES

    directory = seed(engine)
    build(engine, directory)
    send(engine, directory, MemoryProvider())
    import_files(engine, sorted(FIXTURE_PAGES.glob("*.txt")), published=date(2026, 12, 2))  # moved to another week
    with running(make_settings, database_url) as (client, _):
        web = client.get("/archive/1")
    assert web.status_code == 200 and "Iconsmith vs Huewise" in web.text
    assert "Manage preferences" in web.text  # the stored email, not a render from what the catalog holds now
    assert "%%{" not in web.text and "/unsubscribe/" not in web.text and "/preferences/" not in web.text
    assert '<link rel="canonical" href="https://app.example.com/archive/1">' in web.text and "<main>" in web.text


def test_a_new_reader_is_pointed_at_the_latest_issue_on_the_page_and_in_the_welcome(
        engine: Engine, database_url: str, make_settings: Callable[..., Settings]) -> None:
    from tests.newsletter.web.helpers import confirm, csrf, link_in

    directory = seed(engine)
    build(engine, directory)
    send(engine, directory, MemoryProvider())
    with running(make_settings, database_url) as (client, outbox):
        client.post("/subscribe", data={"csrf": csrf(client, "/"), "email": "lee@example.org"})
        confirmed = confirm(client, link_in(outbox, "lee@example.org"))
    assert '<a href="https://app.example.com/archive/1">Read the latest issue</a>' in confirmed.text
    (welcome,) = [m for m in outbox.outbox if m.subject.startswith("Welcome")]
    assert "Read the latest issue: https://app.example.com/archive/1" in welcome.text
    assert 'href="https://app.example.com/archive/1"' in welcome.html
