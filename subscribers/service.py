"""Subscriber actions with their side effects: unsubscribe (and withdraw what is still queued).

Coming back after leaving goes through double opt-in again: ``signup.request_resubscription``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from newsletter import metrics
from newsletter.db import session_scope
from newsletter.errors import SubscriberError
from newsletter.statuses import REACHABLE, SubscriberStatus
from subscribers.models import Subscriber
from subscribers.suppression import suppress


def get(engine: Engine, subscriber_id: int) -> Subscriber:
    """The subscriber, or SubscriberError when the id is unknown or erased (their links no longer work)."""
    with session_scope(engine) as session:
        row = _row(session, subscriber_id)
        if row.erased:
            raise SubscriberError(f"subscriber {subscriber_id} was erased")
        return row


def unsubscribe(engine: Engine, subscriber_id: int, *, channel: str) -> bool:
    """Stop all mail to the subscriber at once; True if this changed their status.

    Deliveries still queued are withdrawn in the same transaction, so an issue being sent right now skips them.
    """
    with session_scope(engine) as session:
        _row(session, subscriber_id)
        changed = bool(suppress(session, [subscriber_id], SubscriberStatus.UNSUBSCRIBED, channel=channel,
                                moment=datetime.now(UTC)))
    metrics.unsubscribed(channel, changed=changed)
    return changed


@dataclass(frozen=True)
class Leaving:
    """A reader as an unsubscribe link found them: the address their page names, and the status they had."""

    email: str
    status: str


def unsubscribe_by_link(engine: Engine, subscriber_id: int, *, channel: str) -> Leaving | None:
    """What an unsubscribe link's POST does, in one transaction: the reader as they were (None when unknown or
    erased), unsubscribed (and their queued deliveries withdrawn) when they were active or pending; a reader who
    already left keeps the record of when and how."""
    with session_scope(engine) as session:
        found = session.execute(LEAVING, {"id": subscriber_id}).first()
        if found is None or found.erased:
            return None
        leaving = Leaving(found.email, found.status)
        if leaving.status not in REACHABLE:
            return leaving
        changed = bool(suppress(session, [subscriber_id], SubscriberStatus.UNSUBSCRIBED, channel=channel,
                                moment=datetime.now(UTC)))
    metrics.unsubscribed(channel, changed=changed)
    return leaving


# Built once, and only the columns the page needs: one-click unsubscribes come in bursts.
_TABLE = Subscriber.__table__  # type: ignore[attr-defined]
LEAVING = select(_TABLE.c.email, _TABLE.c.status, _TABLE.c.erased).where(_TABLE.c.id == bindparam("id"))


def _row(session: Session, subscriber_id: int) -> Subscriber:
    row = session.get(Subscriber, subscriber_id)
    if row is None:
        raise SubscriberError(f"no subscriber {subscriber_id}")
    return row

