"""Subscriber actions with their side effects: unsubscribe (and drop what is still queued).

Coming back after leaving goes through double opt-in again: ``signup.request_resubscription``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from newsletter import metrics
from newsletter.errors import SubscriberError
from newsletter.models import DeliveryRow
from subscribers.models import Subscriber


def get(engine: Engine, subscriber_id: int) -> Subscriber:
    """The subscriber, or SubscriberError when the id is unknown or erased (their links no longer work)."""
    with Session(engine) as session:
        row = _row(session, subscriber_id)
        if row.erased:
            raise SubscriberError(f"subscriber {subscriber_id} was erased")
        return row


def unsubscribe(engine: Engine, subscriber_id: int, *, channel: str) -> bool:
    """Stop all mail to the subscriber at once; True if this changed their status.

    Deliveries still queued are dropped in the same transaction, so an issue being sent right now skips them.
    """
    now = datetime.now(UTC)
    with Session(engine) as session:
        row = _row(session, subscriber_id)
        changed = row.status in ("active", "pending")
        if changed:
            row.status, row.unsubscribed_at, row.unsubscribe_channel = "unsubscribed", now, channel
        drop_queued(session, subscriber_id, reason=f"unsubscribed ({channel})")
        session.commit()
    metrics.unsubscribed(channel, changed=changed)
    return changed


def drop_queued(session: Session, subscriber_id: int | None, *, reason: str) -> None:
    """Drop the subscriber's deliveries not yet claimed for sending, in the caller's transaction."""
    session.exec(update(DeliveryRow).where(col(DeliveryRow.subscriber_id) == subscriber_id,
                                           col(DeliveryRow.status) == "queued")
                 .values(status="dropped", reason=reason))


def _row(session: Session, subscriber_id: int) -> Subscriber:
    row = session.get(Subscriber, subscriber_id)
    if row is None:
        raise SubscriberError(f"no subscriber {subscriber_id}")
    return row
