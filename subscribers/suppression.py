"""Suppression: the one way a subscriber stops getting mail (unsubscribe, bounce, complaint, erasure).

:func:`suppress` changes the status in one guarded UPDATE (only from the statuses it may replace, so a
complaint is never undone by a later bounce or unsubscribe), records when and through which channel the reader
left, and withdraws their queued deliveries through ``newsletter.deliveries`` in the same transaction, so an
issue being sent right now skips them.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import case, update
from sqlmodel import Session, col, select

from newsletter import deliveries
from newsletter.statuses import REACHABLE, REPORTED, SubscriberStatus
from subscribers.models import Subscriber

S = SubscriberStatus
# What each suppressing status may replace: the stronger word stays (complained > bounced > unsubscribed).
REPLACES: dict[SubscriberStatus, frozenset[SubscriberStatus]] = {
    S.UNSUBSCRIBED: REACHABLE,
    S.BOUNCED: REACHABLE | {S.UNSUBSCRIBED},
    S.COMPLAINED: REACHABLE | {S.UNSUBSCRIBED, S.BOUNCED},
}


def suppress(session: Session, ids: Sequence[int], to: SubscriberStatus, *, channel: str, moment: datetime,
             replaces: Collection[SubscriberStatus] | None = None, reason: str | None = None,
             stamp: bool = True) -> set[int]:
    """Stop all mail to the subscribers ``ids``, in the caller's transaction; returns the ids whose status became
    ``to`` (only those in a status of ``replaces``, by default :data:`REPLACES`).

    A reader leaving an active or pending status gets ``moment`` and ``channel`` as the time and way they left;
    a bounce or complaint also dates a reader already bounced or complained with no such time (an import). With
    ``stamp`` off (erasure) nothing says when. Queued deliveries of every reader now out of reach are withdrawn
    with ``reason`` (by default ``"<to> (<channel>)"``).
    """
    ids = list(ids)
    changed = _leave(session, ids, to, replaces=REPLACES[to] if replaces is None else replaces,
                     channel=channel, moment=moment, stamp=stamp)
    if stamp and to in REPORTED:
        session.execute(update(Subscriber).where(col(Subscriber.id).in_(ids), col(Subscriber.status).in_(REPORTED),
                                                 col(Subscriber.unsubscribed_at).is_(None))
                        .values(unsubscribed_at=moment, unsubscribe_channel=channel))
    out = select(Subscriber.id).where(col(Subscriber.id).in_(ids), col(Subscriber.status).not_in(REACHABLE))
    gone = [i for i in session.exec(out).all() if i is not None]
    if gone:
        deliveries.withdraw_reader(session, gone, reason=reason or f"{to} ({channel})")
    return changed


def _leave(session: Session, ids: list[int], to: SubscriberStatus, *, replaces: Collection[SubscriberStatus],
           channel: str, moment: datetime, stamp: bool) -> set[int]:
    """The guarded status change: ``UPDATE … WHERE status IN replaces``, dating only those who were reachable
    (the time a reader first left stays when a bounce follows an unsubscribe). The session's loaded rows are
    kept in step (``synchronize_session``), since callers go on using them in the same transaction."""
    values: dict[str, object] = {"status": to}
    if stamp:
        reachable = col(Subscriber.status).in_(REACHABLE)
        values |= {"unsubscribed_at": case((reachable, moment), else_=col(Subscriber.unsubscribed_at)),
                   "unsubscribe_channel": case((reachable, channel), else_=col(Subscriber.unsubscribe_channel))}
    statement = (update(Subscriber).where(col(Subscriber.id).in_(ids), col(Subscriber.status).in_(list(replaces)))
                 .values(**values).returning(col(Subscriber.id)).execution_options(synchronize_session="fetch"))
    return {row[0] for row in session.execute(statement)}
