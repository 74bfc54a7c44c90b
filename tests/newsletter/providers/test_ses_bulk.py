"""SES body-once (SendBulkEmail with templates) against the local wire server, which moto cannot stand in for."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from newsletter.dispatch import Sending, SendOptions, send_issue
from newsletter.errors import ProviderAuthError, ProviderUnavailable
from newsletter.models import DeliveryRow
from newsletter.providers.ses import SesProvider
from newsletter.providers.ses_bulk import SesBulkProvider, template_text
from newsletter.values import BodyTemplate, Message
from tests import ses_wire
from tests.newsletter.providers.test_http_providers import ENVELOPE, messages
from tests.newsletter.test_issues import build, seed
from tests.wire_server import DOMAIN, Fault, WireServer


@pytest.fixture
def server() -> Iterator[WireServer]:
    ses_wire.TEMPLATES.clear()
    with WireServer() as running:
        yield running


def make(server: WireServer, kind: type[SesProvider] = SesBulkProvider, **kw: Any) -> SesProvider:
    options: dict[str, Any] = {"region": ses_wire.REGION, "api_key": ses_wire.KEY_ID,
                               "secret_access_key": ses_wire.SECRET, "domain": DOMAIN, "base_url": server.url,
                               "sleep": lambda _s: None, "jitter": lambda: 1.0}
    return kind(**(options | kw))


def test_body_once_per_50_destinations_with_each_readers_own_links_and_headers(server: WireServer) -> None:
    batch = messages(120, cohorts=2)
    with make(server) as provider:
        results = provider.send_messages(batch)
    assert all(r.status == "submitted" and r.provider_id for r in results)
    assert [r.delivery_id for r in results] == [m.delivery_id for m in batch]
    assert len(ses_wire.TEMPLATES) == 2  # one template per cohort body
    assert len(server.state.requests) == 2 * 2  # 60 readers a cohort: 50 + 10 destinations
    received = {item.to: item for item in server.state.received}
    assert set(received) == {m.to for m in batch}
    for message in batch:
        got, n = received[message.to], message.delivery_id
        assert f'href="https://app.example.com/unsubscribe/tok{n}&amp;x"' in got.html  # escaped once, in HTML
        assert f"Unsubscribe: https://app.example.com/unsubscribe/tok{n}&x" in got.text  # raw in text
        assert got.headers["List-Unsubscribe"] == (f"<https://app.example.com/unsubscribe/tok{n}&x>, "
                                                   f"<mailto:unsub@{DOMAIN}?subject=u{n}>")
        assert got.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert got.delivery_id == str(n) and f"Hello {n % 2}" in got.html


def test_handlebars_in_catalog_text_arrives_as_written(server: WireServer) -> None:
    body = BodyTemplate("1:odd", '<p>{{ 7*7 }} and {{{raw}}} \\{{x}} C:\\path</p><a href="%%{unsubscribe_url}%%">u</a>',
                        "{{name}} \\ %%{unsubscribe_url}%%")
    batch = [dataclasses.replace(m, template=body) for m in messages(2)]
    with make(server) as provider:
        provider.send_messages(batch)
    got = server.state.received[0]
    assert got.html.startswith("<p>{{ 7*7 }} and {{{raw}}} \\{{x}} C:\\path</p>")
    assert got.text == "{{name}} \\ https://app.example.com/unsubscribe/tok1&x"
    assert "{{ 7*7 }}" not in template_text("{{ 7*7 }}", for_html=True)


def test_each_status_is_read_transient_ones_retried_refused_ones_rejected_alone(server: WireServer) -> None:
    batch = messages(5)
    ses_wire.SES_TRANSIENT.add("reader2@example.org")
    server.state.inactive.add("reader4@example.org")
    with make(server) as provider:
        results = provider.send_messages(batch)
    assert [r.status for r in results] == ["submitted", "submitted", "submitted", "rejected", "submitted"]
    assert "MESSAGE_REJECTED" in (results[3].reason or "") and "reader4" not in (results[3].reason or "")
    assert sorted(server.by_recipient().values()) == [1, 1, 1, 1]  # the retried reader got exactly one


def test_a_non_ascii_local_part_is_rejected_and_the_rest_goes(server: WireServer) -> None:
    with make(server) as provider:
        results = provider.send_messages(messages(2, bad={1: "jörg@example.org"}))
    assert [r.status for r in results] == ["rejected", "submitted"] and "SMTPUTF8" in (results[0].reason or "")


@pytest.mark.parametrize("kind", [SesProvider, SesBulkProvider])
def test_the_wire_server_checks_our_signature(server: WireServer, kind: type[SesProvider]) -> None:
    with make(server, kind, secret_access_key="wrong") as provider, pytest.raises(ProviderAuthError):
        provider.send_messages(messages(1))
    with make(server, kind) as provider:
        assert provider.send_messages(messages(1))[0].status == "submitted"


def test_a_body_no_other_message_shares_goes_as_raw_mime_without_a_template(server: WireServer) -> None:
    batch = messages(3, cohorts=2)  # cohort 0 has reader 2 only
    with make(server) as provider:
        results = provider.send_messages(batch)
    assert [r.status for r in results] == ["submitted"] * 3
    assert len(ses_wire.TEMPLATES) == 1
    alone = next(item for item in server.state.received if item.to == "reader2@example.org")
    assert 'href="https://app.example.com/unsubscribe/tok2&amp;x"' in alone.html and "Hello 0" in alone.html
    assert alone.headers["List-Unsubscribe"] == ("<https://app.example.com/unsubscribe/tok2&x>, "
                                                 f"<mailto:unsub@{DOMAIN}?subject=u2>")


@pytest.mark.parametrize("kind", [SesProvider, SesBulkProvider])
def test_an_issue_sent_through_ses_reaches_every_reader_once(engine: Engine, server: WireServer,
                                                            kind: type[SesProvider]) -> None:
    directory = seed(engine)
    build(engine, directory)  # ten readers in four cohorts
    server.state.inactive.add("all3@example.com")
    ses_wire.SES_TRANSIENT.add("all1@example.com")
    server.state.faults.extend([Fault(), Fault(), Fault(503)])  # the third call fails once, then goes
    with make(server, kind) as provider:
        report = send_issue(engine, 1, provider=provider,
                            sending=Sending(directory, ENVELOPE, SendOptions(batch_size=10)))
    assert report.status == "sent" and report.submitted == 9 and report.rejected == 1
    counts = server.by_recipient()
    assert "all3@example.com" not in counts and sorted(counts.values()) == [1] * 9
    with Session(engine) as session:
        rows = session.exec(select(DeliveryRow)).all()
    assert sorted(r.status for r in rows) == ["rejected"] + ["submitted"] * 9
    assert all(r.provider_id for r in rows if r.status == "submitted")


def test_one_off_mails_without_a_shared_body_go_raw_and_make_no_template(server: WireServer) -> None:
    review = [Message(0, "Desk <desk@news.example.com>", f"editor{n}@example.org", "[Review #1] Subject",
                      f"<p>Review copy {n}</p>", "Review copy") for n in range(3)]
    with make(server) as provider:
        results = provider.send_messages(review)
    assert [r.status for r in results] == ["submitted"] * 3 and ses_wire.TEMPLATES == {}
    assert sorted(item.to for item in server.state.received) == [f"editor{n}@example.org" for n in range(3)]
    assert "<p>Review copy 1</p>" in next(i.html for i in server.state.received if i.to == "editor1@example.org")


def test_a_bulk_call_without_an_answer_leaves_its_readers_unknown_and_keeps_what_was_answered(server: WireServer) -> None:
    batch = messages(6, cohorts=2)  # two bodies: template + bulk call each
    server.state.faults.extend([Fault(), Fault(), Fault(), Fault(delay=1.0)])  # the second bulk call hangs
    with make(server, timeout=0.3) as provider, pytest.raises(ProviderUnavailable) as caught:
        provider.send_messages(batch)
    first, second = [m.delivery_id for m in batch if m.delivery_id % 2 == 1], \
        [m.delivery_id for m in batch if m.delivery_id % 2 == 0]
    assert sorted(r.delivery_id for r in caught.value.settled) == first
    assert sorted(caught.value.unknown) == second  # perhaps sent: never sent again blindly
