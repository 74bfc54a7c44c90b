"""Vote links from a real sent issue, through the real app on both databases: GET and HEAD change nothing, the
button's POST records, a second vote changes it, and every link that may not vote is refused with no change."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from newsletter.config import Settings
from newsletter.db import session_scope
from newsletter.providers.memory import MemoryProvider
from newsletter.statuses import SubscriberStatus
from subscribers import privacy
from subscribers.models import Subscriber
from subscribers.suppression import suppress
from subscribers.tokens import Signer
from tests.newsletter.vote_support import DESIGN, WRITING, message_to, send_first_issue, stored_votes, vote_links
from tests.newsletter.web.helpers import SECRET, confirm, csrf, running


@pytest.fixture
def sent(engine: Engine, database_url: str, make_settings: Callable[..., Settings]
         ) -> Iterator[tuple[TestClient, MemoryProvider]]:
    """Week 47's issue sent to the fixture's readers, and the app serving their links."""
    memory = send_first_issue(engine, make_settings(database_url=database_url, secret_key=SECRET))
    with running(make_settings, database_url) as (client, _):
        yield client, memory


def subscriber_id(engine: Engine, address: str) -> int:
    with Session(engine) as session:
        found = session.exec(select(Subscriber.id).where(Subscriber.email == address)).one()
    assert found is not None
    return found


def test_get_and_head_show_the_button_and_change_nothing(engine: Engine, sent: tuple[TestClient, MemoryProvider]
                                                         ) -> None:
    client, memory = sent
    link = vote_links(message_to(memory, "all0@example.com"))[(*DESIGN, "ship")]
    for _ in range(3):  # a scanner fetches more than once
        page = client.get(link)
        assert page.status_code == 200
        assert "<h1>Your call on Iconsmith: Ship</h1>" in page.text
        assert f'<form method="post" action="{link}">' in page.text and "Vote Ship</button>" in page.text
    head = client.head(link)
    assert head.status_code == 200 and head.content == b""
    assert stored_votes(engine) == []


def test_the_button_records_the_vote_and_a_second_vote_changes_it(engine: Engine,
                                                                  sent: tuple[TestClient, MemoryProvider]) -> None:
    client, memory = sent
    links = vote_links(message_to(memory, "all0@example.com"))
    reader = subscriber_id(engine, "all0@example.com")
    done = confirm(client, links[(*DESIGN, "ship")])
    assert done.status_code == 200, done.text
    assert "Vote recorded." in done.text and "Your call on Iconsmith: Ship" in done.text
    assert stored_votes(engine) == [(reader, *DESIGN, "ship", 1)]
    assert 'href="https://site.example.com/compare/iconsmith-vs-huewise"' in done.text  # back to the comparison
    assert "100% ship <span class=\"muted\">(1 vote)</span>" in done.text  # readers beside the panel
    again = confirm(client, links[(*DESIGN, "skip")])
    assert again.status_code == 200 and "Your call on Iconsmith: Skip" in again.text
    assert stored_votes(engine) == [(reader, *DESIGN, "skip", 1)]  # one vote per reader per tool: the latest
    assert "0% ship <span class=\"muted\">(1 vote)</span>" in again.text
    page = client.get(links[(*DESIGN, "ship")])
    assert "You voted Skip before; voting again changes it." in page.text


def test_the_result_page_changes_the_vote_with_its_own_button(engine: Engine,
                                                              sent: tuple[TestClient, MemoryProvider]) -> None:
    client, memory = sent
    links = vote_links(message_to(memory, "design0@example.com"))
    done = confirm(client, links[(*DESIGN, "skip")])
    token = csrf(client, links[(*DESIGN, "skip")])
    change = links[(*DESIGN, "ship")]
    assert f'<form method="post" action="{change}">' in done.text
    assert client.post(change, data={"csrf": token}).status_code == 200
    assert [row[3] for row in stored_votes(engine)] == ["ship"]


def test_a_post_without_the_pages_csrf_token_records_nothing(engine: Engine,
                                                             sent: tuple[TestClient, MemoryProvider]) -> None:
    client, memory = sent
    link = vote_links(message_to(memory, "all1@example.com"))[(*DESIGN, "ship")]
    client.get(link)
    answer = client.post(link, data={"csrf": "0" * 64})
    assert answer.status_code == 400 and "The form expired" in answer.text
    assert client.post(link).status_code == 400
    assert stored_votes(engine) == []


def refused(client: TestClient, link: str, status: int) -> None:
    """GET, HEAD and a CSRF-correct POST of ``link`` are all refused with ``status`` and a page that says so."""
    token = csrf(client, "/subscribe")  # the visitor's CSRF pair is valid: only the link is wrong
    for answer in (client.get(link), client.post(link, data={"csrf": token})):
        assert answer.status_code == status, (link, answer.text)
        assert "Nothing was recorded." in answer.text
    assert client.head(link).status_code == status


def test_tampered_and_unknown_links_are_refused_and_change_nothing(engine: Engine,
                                                                   sent: tuple[TestClient, MemoryProvider]) -> None:
    client, memory = sent
    link = vote_links(message_to(memory, "all0@example.com"))[(*DESIGN, "ship")]
    token = link.rsplit("/", 1)[1]
    refused(client, link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB"), 400)  # signature changed
    refused(client, link.replace(token, Signer("another-secret-key-entirely").mint_voter(1, 1)), 400)
    refused(client, link.replace(token, Signer(SECRET).mint("manage", 1)), 400)  # another purpose's token
    refused(client, link.replace("/ship/", "/maybe/"), 404)
    assert "ends in neither" in client.get(link.replace("/ship/", "/maybe/")).text  # the choice is what is wrong
    refused(client, link.replace("/iconsmith/", "/draftsmith/"), 404)  # a tool of another comparison
    refused(client, link.replace("/iconsmith-vs-huewise/", "/no-such-comparison/"), 404)
    assert stored_votes(engine) == []


def test_a_comparison_that_was_not_in_the_readers_issue_is_refused(engine: Engine,
                                                                   sent: tuple[TestClient, MemoryProvider]) -> None:
    client, memory = sent
    design = vote_links(message_to(memory, "design0@example.com"))
    assert (*WRITING, "ship") not in design  # the Design cohort's email has no Writing comparison
    everyone = vote_links(message_to(memory, "all0@example.com"))[(*WRITING, "ship")]
    token = design[(*DESIGN, "ship")].rsplit("/", 1)[1]
    refused(client, everyone.rsplit("/", 1)[0] + "/" + token, 404)  # the design reader's token on a Writing link
    other_issue = Signer(SECRET).mint_voter(subscriber_id(engine, "all0@example.com"), 2)
    refused(client, everyone.rsplit("/", 1)[0] + "/" + other_issue, 404)  # no delivery of issue 2
    assert stored_votes(engine) == []


@pytest.mark.parametrize("leaves", ["unsubscribed", "bounced", "complained", "erased"])
def test_readers_who_left_cannot_vote(engine: Engine, sent: tuple[TestClient, MemoryProvider], leaves: str) -> None:
    client, memory = sent
    link = vote_links(message_to(memory, "all2@example.com"))[(*DESIGN, "ship")]
    reader = subscriber_id(engine, "all2@example.com")
    if leaves == "erased":
        privacy.forget(engine, "all2@example.com", secret=SECRET)
    else:
        with session_scope(engine) as session:
            suppress(session, [reader], SubscriberStatus(leaves), channel="test", moment=datetime.now(UTC))
    refused(client, link, 403)
    assert stored_votes(engine) == []


def test_a_preview_link_says_so_and_has_no_button(engine: Engine, sent: tuple[TestClient, MemoryProvider]) -> None:
    client, _ = sent
    page = client.get("/vote/iconsmith-vs-huewise/iconsmith/ship/preview")
    assert page.status_code == 200 and "preview of a vote link" in page.text and "<form" not in page.text
    assert client.post("/vote/iconsmith-vs-huewise/iconsmith/ship/preview", data={}).status_code == 400
    assert stored_votes(engine) == []


def test_votes_json_counts_votes_with_no_personal_data(engine: Engine, sent: tuple[TestClient, MemoryProvider]
                                                       ) -> None:
    client, memory = sent
    for address, choice in (("all0@example.com", "ship"), ("all1@example.com", "ship"), ("all3@example.com", "skip")):
        confirm(client, vote_links(message_to(memory, address))[(*DESIGN, choice)])
    confirm(client, vote_links(message_to(memory, "all0@example.com"))[(*WRITING, "skip")])
    answer = client.get("/votes.json")
    assert answer.status_code == 200 and answer.headers["cache-control"] == "public, max-age=300"
    document = answer.json()
    assert document["since"] is None
    assert document["comparisons"] == [
        {"comparison": "draftsmith-vs-lede", "tools": [{"tool": "draftsmith", "votes": 1, "ship": 0, "ship_percent": 0}]},
        {"comparison": "iconsmith-vs-huewise", "tools": [{"tool": "iconsmith", "votes": 3, "ship": 2, "ship_percent": 67}]},
    ]
    assert "@" not in json.dumps(document)
    assert client.get("/votes.json?since=2999-01-01").json()["comparisons"] == []
    assert client.get("/votes.json?since=2000-01-01").json()["comparisons"] == document["comparisons"]
    bad = client.get("/votes.json?since=last-week")
    assert bad.status_code == 400 and "write it as 2026-11-30" in bad.json()["error"]
