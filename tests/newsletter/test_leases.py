"""Leases: a batch is only written by the claim that holds it, and a batch in flight keeps its lease."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from newsletter import deliveries, issues
from newsletter.clock import ManualClock
from newsletter.dispatch import DEFAULT_LEASE, Sending, SendOptions, send_issue
from newsletter.models import DeliveryBatchRow, DeliveryRow
from newsletter.providers.memory import MemoryProvider
from newsletter.providers.postmark import PostmarkProvider
from newsletter.values import SendResult
from tests.newsletter.test_dispatch import ENVELOPE, statuses
from tests.newsletter.test_issues import build_due, seed
from tests.wire_server import KEY, Fault, WireServer

LEASE = timedelta(seconds=3)
T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def issue_id(engine: Engine) -> int:
    with Session(engine) as session:
        number = issues.get_issue(session, 1).id
    assert number is not None
    return number


def submitted(claim: deliveries.Claim, provider_id: str) -> list[SendResult]:
    return [SendResult(delivery, "submitted", provider_id=provider_id) for delivery, _, _ in claim.rows]


def test_a_claim_that_lost_its_lease_records_nothing(engine: Engine) -> None:
    build_due(engine, seed(engine))
    clock = ManualClock(T0)
    first = deliveries.claim(engine, issue_id(engine), 4, LEASE, clock=clock)
    assert first is not None
    clock.advance(timedelta(seconds=4))
    again = deliveries.claim(engine, issue_id(engine), 4, LEASE, clock=clock)  # the lease ran out
    assert again is not None and (again.key, again.rows) == (first.key, first.rows)
    assert again.lease_key != first.lease_key
    clock.advance(timedelta(seconds=1))
    assert deliveries.record(engine, first, submitted(first, "late"), clock=clock) == set()
    assert not deliveries.renew(engine, first, LEASE, clock=clock)
    deliveries.release(engine, first)  # a stale release gives nothing back either
    assert deliveries.claim(engine, issue_id(engine), 100, LEASE, clock=clock) is not None
    ids = {delivery for delivery, _, _ in first.rows}
    clock.advance(timedelta(seconds=1))
    assert deliveries.record(engine, again, submitted(again, "current"), clock=clock) == ids
    with Session(engine) as session:
        rows = session.exec(select(DeliveryRow).where(DeliveryRow.status == "submitted")).all()
    assert {row.provider_id for row in rows} == {"current"} and len(rows) == 4


def test_a_renewed_lease_is_not_taken_back(engine: Engine) -> None:
    build_due(engine, seed(engine))
    clock = ManualClock(T0)
    first = deliveries.claim(engine, issue_id(engine), 4, LEASE, clock=clock)
    assert first is not None
    clock.advance(timedelta(seconds=2))
    assert deliveries.renew(engine, first, LEASE, clock=clock)  # now held until T0 + 5 s
    clock.advance(timedelta(seconds=2))
    others = deliveries.claim(engine, issue_id(engine), 100, LEASE, clock=clock)
    assert others is not None and not set(others.rows) & set(first.rows)
    assert deliveries.claim(engine, issue_id(engine), 100, LEASE, clock=clock) is None
    clock.advance(timedelta(seconds=2))
    taken = deliveries.claim(engine, issue_id(engine), 100, LEASE, clock=clock)
    assert taken is not None and taken.rows == first.rows


class Overtaken(MemoryProvider):
    """While the first batch is in flight its lease runs out and another sender takes it back and sends it."""

    def __init__(self, engine: Engine, clock: ManualClock) -> None:
        super().__init__()
        self.engine, self.clock, self.overtaken = engine, clock, 0

    def send_messages(self, messages):  # type: ignore[no-untyped-def]
        if not self.overtaken:
            self.clock.advance(DEFAULT_LEASE + timedelta(seconds=1))  # the first sender's lease runs out
            other = deliveries.claim(self.engine, issue_id(self.engine), 100, LEASE, clock=self.clock)
            assert other is not None
            self.overtaken = len(deliveries.record(self.engine, other, submitted(other, "other sender"),
                                                   clock=self.clock))
        return super().send_messages(messages)


def test_the_summary_counts_only_what_this_sender_recorded(engine: Engine) -> None:
    directory = seed(engine)
    build_due(engine, directory)
    clock = ManualClock(T0)
    provider = Overtaken(engine, clock)
    report = send_issue(engine, 1, provider=provider,
                        sending=Sending(directory, ENVELOPE, SendOptions(batch_size=3)), clock=clock)
    assert provider.overtaken == 3
    assert (report.submitted, report.status) == (7, "sent")  # the overtaken batch is counted once, elsewhere
    assert statuses(engine) == Counter({"submitted": 10})
    with Session(engine) as session:
        kept = {row.provider_id for row in session.exec(select(DeliveryRow)) if row.provider_id == "other sender"}
    assert kept == {"other sender"}  # the late answer did not overwrite the other sender's record


SLOW = {  # the first request answers late; the second batch is slower still, so the first sender is free by then
    "latency": [Fault(delay=1.4), Fault(delay=2.8)],
    "retry-after": [Fault(delay=1.4), Fault(429, (("Retry-After", "1.2"),)), Fault(429, (("Retry-After", "1.2"),))],
}


@pytest.mark.parametrize("slow", sorted(SLOW))
def test_a_batch_slower_than_its_lease_is_sent_once(engine: Engine, slow: str) -> None:
    """Answers (or 429 waits) longer than the lease: the lease is renewed while the batch is in flight, so the
    free sender does not take the slow batch back and send it a second time."""
    directory = seed(engine)
    build_due(engine, directory)
    with WireServer() as server:
        server.state.faults.extend(SLOW[slow])
        provider = PostmarkProvider(api_key=KEY, base_url=server.url)
        report = send_issue(engine, 1, provider=provider,
                            sending=Sending(directory, ENVELOPE,
                                            SendOptions(batch_size=3, concurrency=2, lease=timedelta(seconds=1))))
        received = server.by_recipient()
    assert sorted(received.values()) == [1] * 10
    assert (report.submitted, report.status) == (10, "sent")
    assert statuses(engine) == Counter({"submitted": 10})


class Watching(MemoryProvider):
    """Notes, for every batch it is handed, whether its deliveries were still leased at that moment."""

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.engine, self.leased = engine, []  # type: list[bool]

    def send_messages(self, messages):  # type: ignore[no-untyped-def]
        with Session(self.engine) as session:
            leases = session.exec(select(DeliveryBatchRow.lease_until).join(
                DeliveryRow, col(DeliveryRow.batch_id) == col(DeliveryBatchRow.id)).where(
                col(DeliveryRow.id).in_([m.delivery_id for m in messages]))).all()
        self.leased.append(all(lease is not None and lease > datetime.now(UTC) for lease in leases))
        return super().send_messages(messages)


def test_a_batch_waiting_for_the_rate_limit_keeps_its_lease(engine: Engine) -> None:
    """At 3 messages a second, each batch of 3 waits a second for its turn: longer than a 0.6 s lease."""
    directory = seed(engine)
    build_due(engine, directory)
    provider = Watching(engine)
    report = send_issue(engine, 1, provider=provider,
                        sending=Sending(directory, ENVELOPE,
                                        SendOptions(batch_size=3, rate_limit=3, lease=timedelta(seconds=0.6))))
    assert report.submitted == 10 and len(provider.leased) == 4
    assert all(provider.leased), provider.leased
