"""Leases: a batch is only written by the claim that holds it, and a batch in flight keeps its lease."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from newsletter import claims, issues
from newsletter.dispatch import Sending, SendOptions, send_issue
from newsletter.models import DeliveryRow
from newsletter.providers.memory import MemoryProvider
from newsletter.providers.postmark import PostmarkProvider
from newsletter.values import SendResult
from tests.newsletter.test_dispatch import ENVELOPE, statuses
from tests.newsletter.test_issues import build, seed
from tests.wire_server import KEY, Fault, WireServer

LEASE = timedelta(seconds=3)
T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def issue_id(engine: Engine) -> int:
    with Session(engine) as session:
        number = issues.get_issue(session, 1).id
    assert number is not None
    return number


def submitted(claim: claims.Claim, provider_id: str) -> list[SendResult]:
    return [SendResult(delivery, "submitted", provider_id=provider_id) for delivery, _, _ in claim.rows]


def test_a_claim_that_lost_its_lease_records_nothing(engine: Engine) -> None:
    build(engine, seed(engine))
    first = claims.claim(engine, issue_id(engine), 4, LEASE, now=T0)
    assert first is not None
    again = claims.claim(engine, issue_id(engine), 4, LEASE, now=T0 + timedelta(seconds=4))  # the lease ran out
    assert again is not None and (again.key, again.rows) == (first.key, first.rows)
    assert again.lease_key != first.lease_key
    assert claims.record(engine, first, submitted(first, "late"), now=T0 + timedelta(seconds=5)) == set()
    assert not claims.renew(engine, first, LEASE, now=T0 + timedelta(seconds=5))
    claims.release(engine, first)  # a stale release gives nothing back either
    assert claims.claim(engine, issue_id(engine), 100, LEASE, now=T0 + timedelta(seconds=5)) is not None
    ids = {delivery for delivery, _, _ in first.rows}
    assert claims.record(engine, again, submitted(again, "current"), now=T0 + timedelta(seconds=6)) == ids
    with Session(engine) as session:
        rows = session.exec(select(DeliveryRow).where(DeliveryRow.status == "submitted")).all()
    assert {row.provider_id for row in rows} == {"current"} and len(rows) == 4


def test_a_renewed_lease_is_not_taken_back(engine: Engine) -> None:
    build(engine, seed(engine))
    first = claims.claim(engine, issue_id(engine), 4, LEASE, now=T0)
    assert first is not None
    assert claims.renew(engine, first, LEASE, now=T0 + timedelta(seconds=2))  # now held until T0 + 5 s
    others = claims.claim(engine, issue_id(engine), 100, LEASE, now=T0 + timedelta(seconds=4))
    assert others is not None and not set(others.rows) & set(first.rows)
    assert claims.claim(engine, issue_id(engine), 100, LEASE, now=T0 + timedelta(seconds=4)) is None
    taken = claims.claim(engine, issue_id(engine), 100, LEASE, now=T0 + timedelta(seconds=6))
    assert taken is not None and taken.rows == first.rows


class Overtaken(MemoryProvider):
    """While the first batch is in flight its lease runs out and another sender takes it back and sends it."""

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.engine, self.overtaken = engine, 0

    def send_messages(self, messages):  # type: ignore[no-untyped-def]
        if not self.overtaken:
            table = DeliveryRow.__table__  # type: ignore[attr-defined]
            with self.engine.begin() as connection:
                connection.execute(update(table).where(table.c.lease_until.is_not(None))
                                   .values(lease_until=datetime.now(UTC) - timedelta(seconds=1)))
            other = claims.claim(self.engine, issue_id(self.engine), 100, LEASE)
            assert other is not None
            self.overtaken = len(claims.record(self.engine, other, submitted(other, "other sender")))
        return super().send_messages(messages)


def test_the_summary_counts_only_what_this_sender_recorded(engine: Engine) -> None:
    directory = seed(engine)
    build(engine, directory)
    provider = Overtaken(engine)
    report = send_issue(engine, 1, provider=provider,
                        sending=Sending(directory, ENVELOPE, SendOptions(batch_size=3)))
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
    build(engine, directory)
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
            leases = session.exec(select(DeliveryRow.lease_until).where(
                col(DeliveryRow.id).in_([m.delivery_id for m in messages]))).all()
        self.leased.append(all(lease is not None and lease > datetime.now(UTC) for lease in leases))
        return super().send_messages(messages)


def test_a_batch_waiting_for_the_rate_limit_keeps_its_lease(engine: Engine) -> None:
    """At 3 messages a second, each batch of 3 waits a second for its turn: longer than a 0.6 s lease."""
    directory = seed(engine)
    build(engine, directory)
    provider = Watching(engine)
    report = send_issue(engine, 1, provider=provider,
                        sending=Sending(directory, ENVELOPE,
                                        SendOptions(batch_size=3, rate_limit=3, lease=timedelta(seconds=0.6))))
    assert report.submitted == 10 and len(provider.leased) == 4
    assert all(provider.leased), provider.leased
