"""Suppression: the one way a subscriber stops getting mail (unsubscribe, bounce, complaint, erasure).

:func:`suppress` changes the status in one guarded UPDATE (only from the statuses it may replace, so a
complaint is never undone by a later bounce or unsubscribe), records when and through which channel the reader
left, and withdraws their queued deliveries through ``newsletter.deliveries`` in the same transaction, so an
issue being sent right now skips them.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import BindParameter, bindparam, case, select, update
from sqlalchemy.orm.util import identity_key
from sqlmodel import Session

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
    with ``reason`` (by default ``"<to> (<channel>)"``). Readers the session has loaded see the new status on
    their next read.
    """
    ids = list(ids)
    if session.new or session.dirty or session.deleted:
        session.flush()  # the statements below are Core: the session's pending changes go first, as autoflush would
    replacing = sorted(REPLACES[to] if replaces is None else replaces)
    values = {"ids": ids, "to": str(to), "moment": moment, "channel": channel, "replaces": replacing}
    changed: set[int] = set()
    if replacing:  # nothing to replace (a delivered event, a soft bounce under the limit): the UPDATE matches nothing
        changed = {row[0] for row in session.execute(LEAVE_STAMPED if stamp else LEAVE, values)}
    if stamp and to in REPORTED:
        session.execute(DATE_REPORTED, values)
    _expire_loaded(session, ids)
    gone = [i for i in session.execute(OUT_OF_REACH, {"ids": ids}).scalars() if i is not None]
    if gone:
        deliveries.withdraw_reader(session, gone, reason=reason or f"{to} ({channel})")
    return changed


def _expire_loaded(session: Session, ids: list[int]) -> None:
    """Readers of ``ids`` loaded in the session read their status and leaving anew (the UPDATEs went around them)."""
    for subscriber_id in ids:  # looked up by key: a webhook batch's session holds a reader per event
        row = session.identity_map.get(identity_key(Subscriber, subscriber_id))
        if row is not None:
            session.expire(row, ["status", "unsubscribed_at", "unsubscribe_channel"])


# The statements, built once: suppression runs per one-click unsubscribe and per webhook event, and building and
# cache-keying a fresh UPDATE with its CASEs was over half of an unsubscribe's time (bench/web.py, py-spy).
TABLE = Subscriber.__table__  # type: ignore[attr-defined]
_IDS: BindParameter[int] = bindparam("ids", expanding=True)
_WHERE = (TABLE.c.id.in_(_IDS), TABLE.c.status.in_(bindparam("replaces", expanding=True)))
_REACHABLE = TABLE.c.status.in_(sorted(REACHABLE))
_MOMENT = bindparam("moment", type_=TABLE.c.unsubscribed_at.type)
_CHANNEL = bindparam("channel", type_=TABLE.c.unsubscribe_channel.type)
_TO = bindparam("to", type_=TABLE.c.status.type)
# The guarded status change: ``UPDATE … WHERE status IN replaces``, dating only those who were reachable (the time
# a reader first left stays when a bounce follows an unsubscribe).
LEAVE = update(TABLE).where(*_WHERE).values(status=_TO).returning(TABLE.c.id)
LEAVE_STAMPED = update(TABLE).where(*_WHERE).values(
    status=_TO, unsubscribed_at=case((_REACHABLE, _MOMENT), else_=TABLE.c.unsubscribed_at),
    unsubscribe_channel=case((_REACHABLE, _CHANNEL), else_=TABLE.c.unsubscribe_channel)).returning(TABLE.c.id)
DATE_REPORTED = (update(TABLE).where(TABLE.c.id.in_(_IDS), TABLE.c.status.in_(sorted(REPORTED)),
                                     TABLE.c.unsubscribed_at.is_(None))
                 .values(unsubscribed_at=_MOMENT, unsubscribe_channel=_CHANNEL))
OUT_OF_REACH = select(TABLE.c.id).where(TABLE.c.id.in_(_IDS), TABLE.c.status.not_in(sorted(REACHABLE)))
