"""The Delivery table's one owner: queue, withdraw, requeue, mark what webhooks report (both databases).

Claims, leases and fencing are in test_leases.py; these are the writes around a send.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from newsletter import deliveries, desk, issues
from newsletter.clock import ManualClock
from newsletter.db import session_scope
from newsletter.deliveries import BATCHES, TABLE, UNKNOWN_OUTCOME
from newsletter.statuses import DeliveryStatus
from newsletter.values import SendResult
from tests.newsletter.test_dispatch import statuses
from tests.newsletter.test_issues import build, build_due, seed

LEASE = timedelta(minutes=10)


def issue_id(engine: Engine) -> int:
    with session_scope(engine) as session:
        found = issues.get_issue(session, 1).id
    assert found is not None
    return found


def rows(engine: Engine) -> dict[int, tuple[str, str | None]]:
    with engine.connect() as connection:
        return {r.id: (r.status, r.reason) for r in connection.execute(select(TABLE).order_by(TABLE.c.id))}


def test_queueing_again_adds_only_readers_without_a_delivery(engine: Engine) -> None:
    directory = seed(engine)
    assert build(engine, directory).queued == 10
    with session_scope(engine) as session:
        assert deliveries.queue(session, issues.get_issue(session, 1), directory) == 0
    assert statuses(engine) == Counter({"queued": 10})


def test_cancelling_withdraws_what_is_queued_and_leaves_outcomes_alone(engine: Engine) -> None:
    build_due(engine, seed(engine))
    claim = deliveries.claim(engine, issue_id(engine), 2, LEASE)
    assert claim is not None
    deliveries.record(engine, claim, [SendResult(claim.ids[0], "submitted", provider_id="p-1")])
    assert desk.cancel(engine, 1) == 9  # the one still leased included: its sender's record then writes nothing
    assert statuses(engine) == Counter({"withdrawn": 9, "submitted": 1})
    assert deliveries.record(engine, claim, [SendResult(claim.ids[1], "submitted")]) == set()
    with engine.connect() as connection:
        leased = connection.execute(select(BATCHES.c.id).where(BATCHES.c.lease_until.is_not(None))).all()
    assert leased == [] and {reason for status, reason in rows(engine).values() if status == "withdrawn"} == {
        "issue cancelled"}


def test_a_reader_who_leaves_is_withdrawn_even_in_flight_and_that_record_writes_nothing(engine: Engine) -> None:
    directory = seed(engine)
    build_due(engine, directory)
    claim = deliveries.claim(engine, issue_id(engine), 1, LEASE)
    assert claim is not None
    (delivery, subscriber, _), = claim.rows
    with session_scope(engine) as session:
        assert deliveries.withdraw_reader(session, [subscriber], reason="unsubscribed (test)") == 1
        assert deliveries.withdraw_reader(session, [subscriber], reason="again") == 0  # withdrawn once
    assert rows(engine)[delivery] == ("withdrawn", "unsubscribed (test)")
    assert deliveries.record(engine, claim, [SendResult(delivery, "submitted")]) == set()  # in flight: not recorded


def test_a_webhook_marks_a_delivery_once_and_a_complaint_after_a_bounce(engine: Engine) -> None:
    build_due(engine, seed(engine))
    first = min(rows(engine))
    with session_scope(engine) as session:
        assert deliveries.subscriber_of(session, first) is not None
        assert deliveries.subscriber_of(session, 10**9) is None
        assert deliveries.mark_reported(session, first, DeliveryStatus.BOUNCED)
        assert not deliveries.mark_reported(session, first, DeliveryStatus.BOUNCED)
        assert deliveries.mark_reported(session, first, DeliveryStatus.COMPLAINED)
    assert rows(engine)[first][0] == "complained"


def test_only_failures_worth_it_are_queued_again_as_fresh_batches(engine: Engine) -> None:
    build_due(engine, seed(engine))
    ids = sorted(rows(engine))
    with engine.begin() as connection:
        connection.execute(update(TABLE).where(TABLE.c.id == ids[0]).values(status="failed", attempts=1,
                                                                             reason="HTTP 400"))
        connection.execute(update(TABLE).where(TABLE.c.id == ids[1]).values(
            status="failed", attempts=1, reason=UNKNOWN_OUTCOME + "no answer came"))
        connection.execute(update(TABLE).where(TABLE.c.id == ids[2]).values(status="failed", attempts=3))
    which = {"attempts_below": 3, "unknown_outcome": False}
    with session_scope(engine) as session:
        assert deliveries.issues_with_failed(session, [issue_id(engine)], **which) == [issue_id(engine)]
    assert deliveries.requeue_failed(engine, issue_id(engine), **which) == 1
    assert rows(engine)[ids[0]] == ("queued", None)
    assert deliveries.requeue_failed(engine, issue_id(engine)) == 2  # an operator's retry takes every failure
    with engine.connect() as connection:  # in a batch of its own, that no sender has claimed
        old = connection.execute(select(TABLE.c.batch_id).where(TABLE.c.id == ids[3])).scalar()
        batch = connection.execute(select(TABLE.c.batch_id).where(TABLE.c.id == ids[0])).scalar()
        assert batch is not None and batch != old
        assert connection.execute(select(BATCHES.c.fresh).where(BATCHES.c.id == batch)).scalar() is True


def test_expired_leases_are_cleared_by_the_clock_and_the_batch_kept_whole(engine: Engine) -> None:
    build_due(engine, seed(engine))
    clock = ManualClock()
    dead = deliveries.claim(engine, issue_id(engine), 2, LEASE, clock=clock)
    clock.advance(timedelta(minutes=5))
    alive = deliveries.claim(engine, issue_id(engine), 2, LEASE, clock=clock)
    assert dead is not None and alive is not None
    assert deliveries.release_expired(engine, clock=clock) == 0
    clock.advance(timedelta(minutes=6))
    assert deliveries.release_expired(engine, clock=clock) == 2
    assert deliveries.queued_left(engine, issue_id(engine)) == 10
    again = deliveries.claim(engine, issue_id(engine), 100, LEASE, clock=clock)
    assert again is not None and (again.key, again.rows) == (dead.key, dead.rows)


def test_no_module_but_deliveries_writes_the_delivery_table() -> None:
    """The table has one owner: a write statement on it anywhere else fails here."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    write = re.compile(r"\b(update|delete|insert)\(\s*(DeliveryRow|TABLE|DELIVERIES)\b")  # reads may use the table
    names = re.compile(r"\bDeliveryRow\b|\bimport TABLE\b|deliveries\.TABLE|claims\.TABLE|\bDELIVERIES\b")

    def writes(text: str) -> bool:
        return bool(write.search(text) and names.search(text))

    offenders = [str(path.relative_to(root)) for folder in ("newsletter", "subscribers")
                 for path in sorted((root / folder).rglob("*.py"))
                 if "deliveries" not in path.relative_to(root).parts and "migrations" not in path.parts
                 and writes(path.read_text())]
    assert offenders == []
    assert writes("from newsletter.claims import TABLE\nupdate(TABLE).values(status='dropped')")  # it can fail
