"""suppress(): the one way a reader stops getting mail, with the stronger word kept (both databases)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import select

from newsletter.db import session_scope
from newsletter.statuses import SubscriberStatus
from subscribers.models import Subscriber
from subscribers.suppression import suppress
from tests.newsletter.test_dispatch import statuses
from tests.newsletter.test_issues import build, seed

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def reader(engine: Engine, address: str) -> Subscriber:
    with session_scope(engine) as session:
        return session.exec(select(Subscriber).where(Subscriber.email == address)).one()


def test_leaving_withdraws_the_reader_s_queued_deliveries_and_dates_it(engine: Engine) -> None:
    build(engine, seed(engine))
    who = reader(engine, "all0@example.com")
    assert who.id is not None
    with session_scope(engine) as session:
        assert suppress(session, [who.id], SubscriberStatus.UNSUBSCRIBED, channel="one-click", moment=T0) == {who.id}
        assert suppress(session, [who.id], SubscriberStatus.UNSUBSCRIBED, channel="again", moment=T0) == set()
    left = reader(engine, "all0@example.com")
    assert (left.status, left.unsubscribe_channel) == ("unsubscribed", "one-click")
    assert left.unsubscribed_at is not None and left.unsubscribed_at.replace(tzinfo=UTC) == T0
    assert statuses(engine) == Counter({"queued": 9, "withdrawn": 1})


def test_a_complaint_is_never_undone_and_the_first_time_of_leaving_stays(engine: Engine) -> None:
    seed(engine)
    who = reader(engine, "all1@example.com")
    assert who.id is not None
    later = T0 + timedelta(days=1)
    with session_scope(engine) as session:
        suppress(session, [who.id], SubscriberStatus.UNSUBSCRIBED, channel="one-click", moment=T0)
        assert suppress(session, [who.id], SubscriberStatus.BOUNCED, channel="postmark", moment=later) == {who.id}
        assert suppress(session, [who.id], SubscriberStatus.COMPLAINED, channel="postmark", moment=later) == {who.id}
        assert suppress(session, [who.id], SubscriberStatus.BOUNCED, channel="postmark", moment=later) == set()
        assert suppress(session, [who.id], SubscriberStatus.UNSUBSCRIBED, channel="form", moment=later) == set()
    row = reader(engine, "all1@example.com")
    assert (row.status, row.unsubscribe_channel) == ("complained", "one-click")
    assert row.unsubscribed_at is not None and row.unsubscribed_at.replace(tzinfo=UTC) == T0


def test_only_the_statuses_given_are_replaced_and_erasure_leaves_no_date(engine: Engine) -> None:
    seed(engine)
    active, other = reader(engine, "all2@example.com"), reader(engine, "all3@example.com")
    assert active.id is not None and other.id is not None
    with session_scope(engine) as session:
        assert suppress(session, [active.id], SubscriberStatus.BOUNCED, channel="x", moment=T0,
                        replaces=frozenset()) == set()
        assert suppress(session, [other.id], SubscriberStatus.UNSUBSCRIBED, channel="erasure", moment=T0,
                        stamp=False) == {other.id}
    assert reader(engine, "all2@example.com").status == "active"
    erased = reader(engine, "all3@example.com")
    assert (erased.status, erased.unsubscribed_at, erased.unsubscribe_channel) == ("unsubscribed", None, None)
