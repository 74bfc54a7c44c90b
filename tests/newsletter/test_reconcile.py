"""Unknown outcomes settle themselves: timeouts injected after the wire server accepted a batch (or lost it), then
webhook events, the provider's search, or a confident miss decide; every reader ends with exactly one message."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from newsletter import deliveries, reconcile
from newsletter.clock import ManualClock
from newsletter.dispatch import Sending, SendOptions, personalise, send_issue
from newsletter.models import DeliveryRow
from newsletter.providers.http import HttpProvider
from newsletter.providers.mailgun import MailgunProvider
from newsletter.providers.postmark import PostmarkProvider
from newsletter.render import PreparedEmail
from subscribers import store, webhooks
from subscribers.webhook_payloads import PARSERS
from tests.newsletter.providers.test_http_providers import ENVELOPE
from tests.newsletter.test_issues import build, build_due, seed
from tests.wire_server import DOMAIN, KEY, Fault, WireServer

READERS = 10
DELAY = timedelta(seconds=60)  # the providers' search delay in these tests
PROVIDERS: dict[str, Callable[..., HttpProvider]] = {
    "postmark": lambda **kw: PostmarkProvider(**kw),
    "mailgun": lambda **kw: MailgunProvider(domain=DOMAIN, **kw),
}


@pytest.fixture
def server() -> Iterator[WireServer]:
    with WireServer() as running:
        yield running


def make(name: str, server: WireServer) -> HttpProvider:
    return PROVIDERS[name](api_key=KEY, base_url=server.url, timeout=1.5, search_delay=DELAY, sleep=lambda _: None)


def rows(engine: Engine) -> list[DeliveryRow]:
    with Session(engine) as session:
        return list(session.exec(select(DeliveryRow).order_by(DeliveryRow.id)))


def send(engine: Engine, directory: store.SubscriberRecipients, provider: HttpProvider, clock: ManualClock) -> None:
    with provider:
        send_issue(engine, 1, provider=provider, sending=Sending(directory, ENVELOPE, SendOptions(batch_size=3)),
                   top_up=False, clock=clock)


def timed_out(engine: Engine, server: WireServer, provider: HttpProvider, clock: ManualClock,
              fault: Fault) -> tuple[store.SubscriberRecipients, dict[int, str]]:
    """Send issue 1 with ``fault`` on the first request; returns the directory and the failed deliveries'
    addresses by delivery id (all of unknown outcome)."""
    directory = seed(engine)
    assert build(engine, directory).queued == READERS
    server.state.faults.append(fault)
    send(engine, directory, provider, clock)
    failed = [row for row in rows(engine) if row.status == "failed"]
    assert failed and all(row.reason and row.reason.startswith(deliveries.UNKNOWN_OUTCOME) for row in failed)
    people = directory.by_ids([row.subscriber_id for row in failed], active_only=False)
    return directory, {row.id: people[row.subscriber_id].address for row in failed if row.id is not None}


def settle(engine: Engine, directory: store.SubscriberRecipients, provider: HttpProvider,
           clock: ManualClock, hours: float = 6) -> reconcile.Reconciled:
    with provider:
        return reconcile.reconcile_issue(engine, 1, provider=provider, recipients=directory, hours=hours, clock=clock)


def everyone_once(server: WireServer) -> None:
    counts = server.by_recipient()
    assert len(counts) == READERS and set(counts.values()) == {1}, counts


def event(name: str, delivery: int, address: str) -> dict[str, Any]:
    if name == "postmark":
        return {"RecordType": "Delivery", "MessageID": f"m{delivery}", "Recipient": address,
                "DeliveredAt": "2026-11-23T09:00:00Z", "Metadata": {"delivery_id": str(delivery)}}
    return {"event-data": {"event": "accepted", "id": f"ev{delivery}", "recipient": address, "timestamp": 1.0,
                           "user-variables": {"delivery_id": str(delivery)}}}


@pytest.mark.parametrize("name", ["postmark", "mailgun"])
def test_webhook_events_settle_a_timed_out_batch(name: str, engine: Engine, server: WireServer) -> None:
    clock = ManualClock(datetime.now(UTC))
    provider = make(name, server)
    directory, failed = timed_out(engine, server, provider, clock, Fault(delay=4.0))
    events = [e for d, address in failed.items() for e in PARSERS[name]({}, event(name, d, address))]
    assert webhooks.apply(engine, events, soft_limit=3) == len(failed)
    assert Counter(row.status for row in rows(engine)) == Counter({"submitted": READERS})
    clock.advance(DELAY * 2)
    assert settle(engine, directory, provider, clock) == reconcile.Reconciled(1)  # nothing left to settle
    everyone_once(server)


@pytest.mark.parametrize("name", ["postmark", "mailgun"])
def test_the_search_finds_a_timed_out_batch(name: str, engine: Engine, server: WireServer) -> None:
    clock = ManualClock(datetime.now(UTC))
    provider = make(name, server)
    directory, failed = timed_out(engine, server, provider, clock, Fault(delay=4.0))
    server.state.indexing_delay = 3600  # not indexed yet: a miss within the search delay decides nothing
    clock.advance(DELAY / 2)
    assert settle(engine, directory, provider, clock) == reconcile.Reconciled(1, waiting=len(failed))
    server.state.indexing_delay = 0
    clock.advance(DELAY)
    assert settle(engine, directory, provider, clock) == reconcile.Reconciled(1, accepted=len(failed))
    assert settle(engine, directory, provider, clock) == reconcile.Reconciled(1)
    assert Counter(row.status for row in rows(engine)) == Counter({"submitted": READERS})
    everyone_once(server)


@pytest.mark.parametrize("name", ["postmark", "mailgun"])
def test_a_confident_miss_queues_the_batch_again_once(name: str, engine: Engine, server: WireServer) -> None:
    clock = ManualClock(datetime.now(UTC))
    provider = make(name, server)
    directory, failed = timed_out(engine, server, provider, clock, Fault(delay=4.0, lose=True))
    assert settle(engine, directory, provider, clock) == reconcile.Reconciled(1, waiting=len(failed))
    clock.advance(DELAY * 2)
    assert settle(engine, directory, provider, clock) == reconcile.Reconciled(1, requeued=len(failed))
    assert settle(engine, directory, provider, clock) == reconcile.Reconciled(1)  # never queued twice
    assert {row.id for row in rows(engine) if row.status == "queued"} == set(failed)
    send(engine, directory, provider, clock)
    assert Counter(row.status for row in rows(engine)) == Counter({"submitted": READERS})
    everyone_once(server)


def test_what_stays_unknown_past_the_window_is_left_to_the_operator(engine: Engine, server: WireServer) -> None:
    clock = ManualClock(datetime.now(UTC))
    provider = make("postmark", server)
    directory, failed = timed_out(engine, server, provider, clock, Fault(delay=4.0, lose=True))
    before = {row.id: row.reason for row in rows(engine) if row.status == "failed"}
    clock.advance(timedelta(hours=7))
    assert settle(engine, directory, provider, clock) == reconcile.Reconciled(1, expired=len(failed))
    assert {row.id: row.reason for row in rows(engine) if row.status == "failed"} == before


@pytest.mark.parametrize(("name", "reached"), [("postmark", True), ("postmark", False), ("mailgun", True),
                                               ("mailgun", False)])
def test_a_reclaimed_batch_asks_first_and_sends_only_the_rest(name: str, reached: bool, engine: Engine,
                                                              server: WireServer) -> None:
    """A sender died holding a batch (having sent it, or not): the next one asks, then sends what is missing."""
    clock = ManualClock(datetime.now(UTC))
    directory = seed(engine)
    build_due(engine, directory)
    provider = make(name, server)
    claim = deliveries.claim(engine, rows(engine)[0].issue_id, 4, timedelta(minutes=10), clock=clock)
    assert claim is not None
    if reached:
        _send_as_the_dead_sender(engine, directory, provider, claim)
    clock.advance(timedelta(minutes=11))
    send(engine, directory, provider, clock)
    assert Counter(row.status for row in rows(engine)) == Counter({"submitted": READERS})
    everyone_once(server)
    assert server.state.searches >= len(claim.ids)


def _send_as_the_dead_sender(engine: Engine, directory: store.SubscriberRecipients, provider: HttpProvider,
                             claim: deliveries.Claim) -> None:
    from newsletter import issues

    with Session(engine) as session:
        rendered = issues.rendered_emails(session, issues.get_issue(session, 1))
    people = directory.by_ids([s for _, s, _ in claim.rows])
    messages = [personalise(PreparedEmail.of(rendered[cohort], key=f"1:{cohort}"), people[s], delivery_id=d,
                            issue_number=1, envelope=ENVELOPE, fill=False) for d, s, cohort in claim.rows]
    with provider:
        provider.send_batch(messages, key=claim.key)


def test_any_event_naming_the_delivery_settles_it_then_applies(engine: Engine, server: WireServer) -> None:
    """A bounce settles the unknown delivery and marks it bounced; a "sent"-like event settles it as submitted;
    the same events for a delivery already submitted change nothing of it."""
    clock = ManualClock(datetime.now(UTC))
    provider = make("postmark", server)
    _, failed = timed_out(engine, server, provider, clock, Fault(delay=4.0))
    (bounced, bounced_to), (opened, opened_to), *_ = failed.items()
    done = next(row for row in rows(engine) if row.status == "submitted")
    events = PARSERS["postmark"]({}, {"RecordType": "Bounce", "ID": 7, "Type": "HardBounce", "Email": bounced_to,
                                      "Metadata": {"delivery_id": str(bounced)}})
    events += PARSERS["postmark"]({}, {"RecordType": "Open", "MessageID": "m1", "Recipient": opened_to,
                                       "Metadata": {"delivery_id": str(opened)}})
    events += PARSERS["sendgrid"]({}, [{"event": "processed", "email": "x@example.com", "sg_event_id": "e1",
                                        "delivery_id": str(done.id)}])
    webhooks.apply(engine, events, soft_limit=3)
    status = {row.id: row.status for row in rows(engine)}
    assert (status[bounced], status[opened], status[done.id]) == ("bounced", "submitted", "submitted")
    assert all(status[d] == "failed" for d in list(failed)[2:])


def test_a_sender_told_to_stop_while_it_waits_to_trust_a_miss_lets_the_batch_go_unsent(engine: Engine,
                                                                                      server: WireServer) -> None:
    """SIGTERM (``stop``) during the wait for the search delay: the batch is released whole, nothing is sent, and
    the next sender takes it back and asks again."""
    import threading

    clock = ManualClock(datetime.now(UTC))
    directory = seed(engine)
    build_due(engine, directory)
    provider = make("postmark", server)
    claim = deliveries.claim(engine, rows(engine)[0].issue_id, 4, timedelta(minutes=10), clock=clock)
    assert claim is not None
    clock.advance(timedelta(minutes=10, seconds=5))  # its lease ran out; a miss is trusted only in 55 s
    again = deliveries.claim(engine, rows(engine)[0].issue_id, 4, timedelta(minutes=10), clock=clock)
    assert again is not None and again.reclaimed
    stop = threading.Event()
    stop.set()
    with provider:
        settled, rest = reconcile.reclaimed(engine, again, provider=provider, recipients=directory,
                                            since=clock.now() - timedelta(hours=1), lease=timedelta(minutes=10),
                                            clock=clock, stop=stop)
    assert (settled, rest) == ([], None) and server.state.received == []
    taken_back = deliveries.claim(engine, rows(engine)[0].issue_id, 4, timedelta(minutes=10), clock=clock)
    assert taken_back is not None and taken_back.key == again.key and taken_back.reclaimed
