"""The click redirect over HTTP: stored targets only, 404s, scanner traffic, tracked readers, the privacy note and
what the desk shows (both databases)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy.engine import Engine

from newsletter import editors
from newsletter.config import Settings
from newsletter.providers.memory import MemoryProvider
from subscribers.tokens import Signer
from tests.conftest import TEST_SECRET_KEY
from tests.newsletter.clicking import REDIRECT, SITE, clicks, sent
from tests.newsletter.web.desk.test_issue_page import FAST, PASSWORD, fast_gate, sign_in
from tests.newsletter.web.helpers import running

BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari"}
Serve = Callable[..., Any]


@pytest.fixture
def serve(make_settings: Callable[..., Settings], database_url: str) -> Iterator[Serve]:
    """Start the app (``track_readers`` and other settings as given) for the issue already sent."""
    def start(**overrides: Any) -> Any:
        return running(make_settings, database_url, gate=fast_gate, postal_address="1 Test Street",
                       site_url=SITE, **overrides)
    yield start


def written(client: TestClient, engine: Engine) -> int:
    """Write the app's buffered clicks now (its writer thread would within a quarter second, and may have already:
    a flush waits for a write under way); how many clicks the database holds."""
    client.app.state.wiring.clicks.flush()  # type: ignore[attr-defined]
    return len(clicks(engine))


def test_a_link_redirects_to_its_stored_target_and_counts(engine: Engine, serve: Serve) -> None:
    sent(engine)
    with serve() as (client, _):
        answer = client.get("/r/1/1", headers=BROWSER, follow_redirects=False)
        assert answer.status_code == 302 and answer.headers["location"] == SITE + "iconsmith-vs-huewise"
        assert answer.headers["cache-control"] == "no-store"
        assert client.get("/r/1/2", headers=BROWSER, follow_redirects=False).headers["location"] == \
            SITE + "draftsmith-vs-lede"
        assert written(client, engine) == 2
    assert [c.subscriber_id for c in clicks(engine)] == [None, None]


def test_the_web_version_of_a_routed_issue_links_to_the_site_directly(engine: Engine, serve: Serve) -> None:
    sent(engine)
    with serve() as (client, _):
        page = client.get("/archive/1")
    assert page.status_code == 200 and "Read Iconsmith vs Huewise" in page.text
    assert f'href="{SITE}iconsmith-vs-huewise"' in page.text and "/r/1/" not in page.text  # rendered, not the email
    assert "%%{" not in page.text


@pytest.mark.parametrize("path", ["/r/1/3", "/r/2/1", "/r/0/1", "/r/1/0", "/r/abc/1", "/r/1/99999999999",
                                  "/r/1/1/https://evil.example.com", "/r/1/https%3A%2F%2Fevil.example.com"])
def test_unknown_links_are_the_sites_404(engine: Engine, serve: Serve, path: str) -> None:
    sent(engine)
    with serve() as (client, _):
        answer = client.get(path, headers=BROWSER, follow_redirects=False)
        assert answer.status_code == 404 and "Page not found" in answer.text
        assert written(client, engine) == 0


def test_a_crafted_url_cannot_choose_the_destination(engine: Engine, serve: Serve) -> None:
    sent(engine)
    with serve() as (client, _):
        for query in ("?url=https://evil.example.com", "?target=//evil.example.com", "?next=https://evil.example.com"):
            answer = client.get("/r/1/1" + query, headers=BROWSER, follow_redirects=False)
            assert answer.headers["location"] == SITE + "iconsmith-vs-huewise"


def scanned() -> float:
    return REGISTRY.get_sample_value("newsletter_clicks_total", {"outcome": "scanner"}) or 0.0


def test_scanner_traffic_is_redirected_but_not_counted(engine: Engine, serve: Serve) -> None:
    sent(engine)
    before = scanned()
    with serve() as (client, _):
        head = client.head("/r/1/1", headers=BROWSER, follow_redirects=False)
        assert head.status_code == 302 and head.headers["location"] == SITE + "iconsmith-vs-huewise"
        scanner = {"User-Agent": "Mozilla/5.0 (compatible; BingPreview/1.0b)"}
        assert client.get("/r/1/1", headers=scanner, follow_redirects=False).status_code == 302
        assert client.get("/r/1/1", headers={"User-Agent": ""}, follow_redirects=False).status_code == 302
        assert written(client, engine) == 0
    assert clicks(engine) == [] and scanned() == before + 3  # seen on /metrics as scanner traffic


def test_a_click_right_after_the_submission_is_not_counted(engine: Engine, serve: Serve) -> None:
    sent(engine, ago=0)
    with serve() as (client, _):
        assert client.get("/r/1/1", headers=BROWSER, follow_redirects=False).status_code == 302
        assert written(client, engine) == 0


def links_of(outbox: MemoryProvider, address: str) -> list[tuple[str, str]]:
    """(path, token) of every redirect link in the text of the message to ``address``."""
    message = next(m for m in outbox.outbox if m.to == address)
    return [(f"/r/{m[2]}/{m[3]}", m[4] or "") for m in REDIRECT.finditer(message.text)]


def test_tracked_clicks_name_the_reader_and_bad_tokens_count_anonymously(engine: Engine, serve: Serve) -> None:
    outbox = sent(engine, track=True)
    (path, token), *_ = links_of(outbox, "all0@example.com")
    reader, _issue = Signer(TEST_SECRET_KEY).read_voter(token)
    foreign = Signer(TEST_SECRET_KEY).mint_voter(reader, 2)  # the same reader's token for another issue
    with serve(track_readers=True) as (client, _):
        for query in (token, token, token[:-2] + "xx", foreign, "", "a" * 5000):
            answer = client.get(path, params={"r": query}, headers=BROWSER, follow_redirects=False)
            assert answer.status_code == 302, query
        assert written(client, engine) == 6
    assert [c.subscriber_id for c in clicks(engine)] == [reader, reader, None, None, None, None]
    assert [c.first_on_link for c in clicks(engine)] == [True, False, False, False, False, False]


def test_untracked_the_reader_is_never_read_from_the_url(engine: Engine, serve: Serve) -> None:
    outbox = sent(engine, track=True)  # an issue rendered while tracking was on
    (path, token), *_ = links_of(outbox, "all0@example.com")
    with serve() as (client, _):
        client.get(path, params={"r": token}, headers=BROWSER, follow_redirects=False)
        assert written(client, engine) == 1
    assert [c.subscriber_id for c in clicks(engine)] == [None]


@pytest.mark.parametrize("track", [False, True])
def test_the_sign_up_pages_privacy_note_follows_the_setting(engine: Engine, serve: Serve, track: bool) -> None:
    with serve(track_readers=track) as (client, _):
        note = re.search(r'<p class="muted" id="privacy-clicks">(.*?)</p>', client.get("/").text, re.DOTALL)
    assert note is not None
    text = " ".join(note[1].split())
    assert ("tells us it was you" in text) is track
    assert ("carries nothing that says who you are" in text) is not track
    assert "no tracking pixel" in text


def test_the_desk_shows_clicks_per_comparison_and_the_chart(engine: Engine, serve: Serve) -> None:
    outbox = sent(engine, track=True)
    editors.add_editor(engine, "ann", PASSWORD, email="ann@example.com", cost=FAST)
    with serve(track_readers=True) as (client, _):
        for address in ("all0@example.com", "all1@example.com", "design0@example.com"):
            path, token = links_of(outbox, address)[0]
            client.get(path, params={"r": token}, headers=BROWSER, follow_redirects=False)
        client.get("/r/1/2", headers=BROWSER, follow_redirects=False)
        written(client, engine)
        sign_in(client)
        page = client.get("/editor/issues/1").text
    rows = re.findall(r"<tr><td>([^<]+)</td><td class=\"n\">(\d+)</td><td class=\"n\">(\d+)</td></tr>", page)
    assert rows == [("Iconsmith vs Huewise", "3", "3"), ("Draftsmith vs Lede", "1", "0")]
    assert re.search(r"<th>Readers who clicked</th><td class=\"n\">3</td>", page)
    assert re.search(r"<th>Click-through</th><td class=\"n\">30.0 %</td>", page)  # 3 readers of 10 submitted
    assert re.search(r"<th>Unsubscribed after it</th><td class=\"n\">0</td>", page)
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in page and "Iconsmith vs Huewise: 3 clicks, 3 unique" in page
