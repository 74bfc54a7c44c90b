"""Sending: exactly one submitted delivery per reader, resumable after failures (both databases)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from newsletter import deliveries, dispatch, issues
from newsletter.clock import ManualClock
from newsletter.db import session_scope
from newsletter.dispatch import Envelope, Sending, SendOptions, send_issue
from newsletter.errors import (
    IssueStateError,
    ProviderAmbiguous,
    ProviderAuthError,
    ProviderRequestError,
    ProviderUnavailable,
)
from newsletter.models import DeliveryBatchRow, DeliveryRow
from newsletter.providers.memory import MemoryProvider
from subscribers import store
from subscribers.models import Subscriber
from tests.newsletter.test_issues import build, build_due, seed

ENVELOPE = Envelope("Verdicts <v@news.example.com>", "Weekly AI Tool Verdicts", "news.example.com",
                    "https://app.example.com")


def statuses(engine: Engine) -> Counter[str]:
    with Session(engine) as session:
        return Counter(d.status for d in session.exec(select(DeliveryRow)))


def send(engine: Engine, directory: store.SubscriberRecipients, provider: MemoryProvider, batch: int = 3) -> dispatch.SendReport:
    return send_issue(engine, 1, provider=provider,
                      sending=Sending(directory, ENVELOPE, SendOptions(batch_size=batch)))


def test_everyone_gets_exactly_one_personal_message(engine: Engine) -> None:
    directory = seed(engine)
    build(engine, directory)
    provider = MemoryProvider()
    report = send(engine, directory, provider)
    assert (report.submitted, report.status, report.batches) == (10, "sent", 4)
    assert sorted(Counter(m.to for m in provider.outbox).values()) == [1] * 10
    assert "audio@example.com" not in {m.to for m in provider.outbox}
    message = next(m for m in provider.outbox if m.to == "design1@example.com")
    recipient = directory.find("design1@example.com")
    assert recipient is not None
    assert recipient[0].unsubscribe_url in message.html and recipient[0].preferences_url in message.text
    assert message.header("List-Unsubscribe") == f"<{recipient[0].unsubscribe_url}>, <{recipient[0].unsubscribe_mailto}>"
    assert message.header("List-Unsubscribe-Post") == "List-Unsubscribe=One-Click"
    assert "https://app.example.com/archive/1" in message.html and "%%{" not in message.html
    other = next(m for m in provider.outbox if m.to == "design2@example.com")
    assert other.html.replace(other.header("X-Newsletter-Delivery") or "", "") != message.html
    with pytest.raises(IssueStateError, match="issue 1 is sent"):
        send(engine, directory, provider)
    assert len(provider.outbox) == 10


def test_refusals_are_recorded_and_leavers_are_dropped(engine: Engine) -> None:
    directory = seed(engine)
    build(engine, directory)
    with session_scope(engine) as session:
        leaver = session.exec(select(Subscriber).where(Subscriber.email == "all0@example.com")).one()
        leaver.status = "unsubscribed"
    provider = MemoryProvider(reject={"all1@example.com": "inactive recipient"})
    report = send(engine, directory, provider)
    assert (report.submitted, report.rejected, report.dropped) == (8, 1, 1)
    assert report.reasons == {"inactive recipient": 1}
    assert statuses(engine) == Counter({"submitted": 8, "rejected": 1, "withdrawn": 1})
    assert report.status == "sent"


def test_unavailable_provider_leaves_the_rest_queued_and_a_rerun_finishes(engine: Engine) -> None:
    directory = seed(engine)
    build(engine, directory)
    provider = MemoryProvider()
    original = provider.send_messages
    calls = {"n": 0}

    def flaky(messages):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            raise ProviderUnavailable("503 from the service")
        return original(messages)

    provider.send_messages = flaky  # type: ignore[method-assign]
    with pytest.raises(ProviderUnavailable):
        send(engine, directory, provider)
    assert statuses(engine) == Counter({"submitted": 3, "queued": 7})
    with Session(engine) as session:
        assert all(b.lease_until is None for b in session.exec(select(DeliveryBatchRow)))
    report = send(engine, directory, provider)
    assert report.submitted == 7 and report.status == "sent"
    assert sorted(Counter(m.to for m in provider.outbox).values()) == [1] * 10


def test_refused_credentials_pause_the_issue_until_resumed(engine: Engine) -> None:
    directory = seed(engine)
    build(engine, directory)
    provider = MemoryProvider()
    provider.fail_with = ProviderAuthError("401: check NEWSLETTER_PROVIDER_API_KEY")
    with pytest.raises(ProviderAuthError):
        send(engine, directory, provider)
    with Session(engine) as session:
        issue = issues.get_issue(session, 1)
        assert issue.status == "paused" and "NEWSLETTER_PROVIDER_API_KEY" in (issue.error or "")
    assert statuses(engine) == Counter({"queued": 10})
    assert send(engine, directory, provider).status == "sent"


def test_readers_who_joined_after_the_build_are_included(engine: Engine) -> None:
    directory = seed(engine)
    build(engine, directory)
    with session_scope(engine) as session:
        store.add_active(session, ["late@example.com"], categories=["Design"])
        store.add_active(session, ["niche@example.com"], categories=["Audio", "Design"])
    provider = MemoryProvider()
    send(engine, directory, provider)
    recipients = {m.to for m in provider.outbox}
    assert "late@example.com" in recipients
    assert "niche@example.com" not in recipients  # a preference set the issue was not rendered for


def test_a_crashed_batch_is_claimed_again_only_after_its_lease(engine: Engine) -> None:
    directory = seed(engine)
    build_due(engine, directory)
    with Session(engine) as session:
        issue_id = issues.get_issue(session, 1).id
    assert issue_id is not None
    clock, lease = ManualClock(), timedelta(minutes=10)
    crashed = deliveries.claim(engine, issue_id, 4, lease, clock=clock)
    assert crashed is not None and len(crashed.rows) == 4
    clock.advance(timedelta(minutes=1))
    others = deliveries.claim(engine, issue_id, 100, lease, clock=clock)
    assert others is not None and len(others.rows) == 6 and not set(crashed.rows) & set(others.rows)
    assert deliveries.claim(engine, issue_id, 100, lease, clock=clock) is None
    clock.advance(lease - timedelta(seconds=30))  # the crashed batch's lease has run out, not the others'
    again = deliveries.claim(engine, issue_id, 100, lease, clock=clock)
    assert again is not None
    assert (again.key, again.rows) == (crashed.key, crashed.rows)  # the same batch, whole, under the same key
    assert again.reclaimed and not crashed.reclaimed and again.lease_key != crashed.lease_key


class Refusing(MemoryProvider):
    """Refuses the whole request for batches holding a given address, like a service's 400."""

    def __init__(self, poison: str, error: type[Exception]) -> None:
        super().__init__()
        self.poison, self.error = poison, error

    def send_messages(self, messages):  # type: ignore[no-untyped-def]
        if any(m.to == self.poison for m in messages):
            raise self.error("HTTP 400: invalid address in batch")
        return super().send_messages(messages)


@pytest.mark.parametrize("error", [ProviderRequestError, ProviderAmbiguous])
def test_a_refused_or_ambiguous_batch_fails_alone_and_can_be_retried(engine: Engine, error: type[Exception]) -> None:
    directory = seed(engine)
    build(engine, directory)
    provider = Refusing("all1@example.com", error)
    report = send(engine, directory, provider, batch=2)
    assert report.failed == 2 and report.submitted == 8 and report.status == "sent"
    assert statuses(engine) == Counter({"submitted": 8, "failed": 2})
    assert any("invalid address" in reason for reason in report.reasons)
    with Session(engine) as session:
        issue_id = issues.get_issue(session, 1).id
        assert issue_id is not None
    assert deliveries.requeue_failed(engine, issue_id) == 2
    with session_scope(engine) as session:
        issues.get_issue(session, 1).status = "paused"  # an operator resumes a finished issue to retry
    provider.poison = "nobody"
    assert send(engine, directory, provider).submitted == 2
    assert statuses(engine) == Counter({"submitted": 10})


def test_a_permanent_refusal_suppresses_the_subscriber(engine: Engine) -> None:
    directory = seed(engine)
    build(engine, directory)
    send(engine, directory, MemoryProvider(reject={"all2@example.com": "inactive recipient"}))
    with Session(engine) as session:
        assert session.exec(select(Subscriber).where(Subscriber.email == "all2@example.com")).one().status == "bounced"
    assert directory.find("all2@example.com") is None


def test_four_workers_send_each_delivery_exactly_once(engine: Engine) -> None:
    directory = seed(engine)
    with session_scope(engine) as session:
        store.add_active(session, [f"extra{i}@example.com" for i in range(200)])
    build(engine, directory)
    provider = MemoryProvider()
    report = send_issue(engine, 1, provider=provider,
                        sending=Sending(directory, ENVELOPE, SendOptions(batch_size=7, concurrency=4)))
    assert report.submitted == 210 and report.status == "sent"
    assert sorted(Counter(m.to for m in provider.outbox).values()) == [1] * 210


def test_pacer_spaces_batches_to_the_rate() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = dispatch.Pacer(100.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        pacer.wait(50)
    assert slept == [0.5, 0.5, 0.5, 0.5]
    assert now[0] == pytest.approx(2.0)  # 250 messages at 100/s: 2 s after the first batch left


class Idempotent(MemoryProvider):
    """A memory provider that, like Resend, deduplicates a batch sent again under the same key."""

    idempotent = True


def test_a_taken_back_batch_that_cannot_be_rebuilt_is_failed_not_sent_again(engine: Engine) -> None:
    directory = seed(engine)
    build_due(engine, directory)
    with Session(engine) as session:
        issue_id = issues.get_issue(session, 1).id
    assert issue_id is not None
    crashed = deliveries.claim(engine, issue_id, 3, timedelta(seconds=1),
                               clock=ManualClock(datetime.now(UTC) - timedelta(seconds=5)))
    assert crashed is not None  # its sender died after the request went out; the lease has run out since
    gone, left = crashed.rows[0][1], crashed.rows[1][1]
    with session_scope(engine) as session:
        session.delete(session.get(Subscriber, gone))  # erased: this batch can no longer be rebuilt as it was
        session.exec(select(Subscriber).where(Subscriber.id == left)).one().status = "unsubscribed"
    provider = Idempotent()
    report = send(engine, directory, provider)
    assert (report.failed, report.submitted) == (3, 7)
    assert statuses(engine) == Counter({"submitted": 7, "failed": 3})
    assert all(reason.startswith(deliveries.UNKNOWN_OUTCOME) for reason in report.reasons)


def test_a_batch_refused_for_its_credentials_is_batched_afresh_without_readers_who_left(engine: Engine) -> None:
    """401 means the service took nothing: that batch may change, so a reader who left meanwhile gets nothing."""
    directory = seed(engine)
    build(engine, directory)
    provider = Idempotent()
    provider.fail_with = ProviderAuthError("401: check NEWSLETTER_PROVIDER_API_KEY")
    with pytest.raises(ProviderAuthError):
        send(engine, directory, provider)
    with session_scope(engine) as session:
        first = session.exec(select(DeliveryRow).order_by(col(DeliveryRow.id))).first()
        assert first is not None
        leaver = session.exec(select(Subscriber).where(Subscriber.id == first.subscriber_id)).one()
        leaver.status, address = "unsubscribed", leaver.email
    report = send(engine, directory, provider)
    assert (report.submitted, report.dropped, report.status) == (9, 1, "sent")
    assert address not in {m.to for m in provider.outbox}
