"""Subscriber figures for the desk: per-issue outcomes, departures and waves, and active subscribers over time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from newsletter import waves
from newsletter.db import session_scope
from newsletter.models import DeliveryRow, IssueRow
from newsletter.statuses import REACHED, DeliveryStatus, SubscriberStatus
from newsletter.zones import LocalTime
from subscribers.models import Subscriber
from subscribers.store import zones_in_use


@dataclass(frozen=True, slots=True)
class IssueFigures:
    """What happened to one issue's deliveries, and how many of its readers left after it."""

    queued: int
    submitted: int
    rejected: int
    failed: int
    withdrawn: int
    bounced: int
    complained: int
    unsubscribed_since: int

    @classmethod
    def of(cls, counts: dict[str, int], unsubscribed_since: int) -> IssueFigures:
        """From delivery counts by status; bounced and complained deliveries had been submitted first."""
        d = DeliveryStatus
        bounced, complained = counts.get(d.BOUNCED, 0), counts.get(d.COMPLAINED, 0)
        return cls(counts.get(d.QUEUED, 0), counts.get(d.SUBMITTED, 0) + bounced + complained,
                   counts.get(d.REJECTED, 0), counts.get(d.FAILED, 0), counts.get(d.WITHDRAWN, 0), bounced, complained,
                   unsubscribed_since)


def unsubscribed_since(session: Session, number: int | None = None) -> dict[int, int]:
    """Per issue number (every issue, or just ``number``): readers who were sent it and unsubscribed after it went
    out, in one query."""
    query = (select(IssueRow.number, func.count())
             .join(DeliveryRow, col(DeliveryRow.issue_id) == col(IssueRow.id))
             .join(Subscriber, col(Subscriber.id) == col(DeliveryRow.subscriber_id))
             .where(col(IssueRow.sent_at).is_not(None), Subscriber.status == SubscriberStatus.UNSUBSCRIBED,
                    col(Subscriber.unsubscribed_at) >= col(IssueRow.sent_at),
                    col(DeliveryRow.status).in_(REACHED))
             .group_by(col(IssueRow.number)))
    if number is not None:
        query = query.where(IssueRow.number == number)
    return {number: count for number, count in session.exec(query)}


def subscribers_over_time(session: Session, *, today: date, weeks: int = 26) -> list[tuple[date, int]]:
    """Active subscribers at the end of each of the last ``weeks`` weeks, oldest first; one pass over the table.

    A subscriber counts from their confirmation until they left (unsubscribed, bounced or complained).
    """
    days = [today - timedelta(weeks=weeks - 1 - i) for i in range(weeks)]
    columns = []
    for day in days:
        moment = datetime.combine(day, time.max, tzinfo=UTC)
        active = and_(col(Subscriber.confirmed_at).is_not(None), col(Subscriber.confirmed_at) <= moment,
                      or_(col(Subscriber.unsubscribed_at).is_(None), col(Subscriber.unsubscribed_at) > moment))
        columns.append(func.coalesce(func.sum(case((active, 1), else_=0)), 0))
    row = session.exec(select(*columns)).one()
    return list(zip(days, (int(v) for v in row), strict=True))


def wave_lines(engine: Engine, number: int, *, local: LocalTime | None, zone: ZoneInfo,
               now: datetime) -> list[tuple[str, str]]:
    """Issue ``number``'s waves as (state, line) for the desk and ``issue list``: each one's time in ``zone``, how
    many of the active readers' zones it is the local send time of (with ``local`` delivery), readers, what is left."""
    found = waves.waves(engine, number)
    if local is not None and found:
        with session_scope(engine) as session:
            found = waves.with_zones(found, zones_in_use(session), local)
    return [(waves.state(w, now), waves.describe(w, zone=zone, now=now, local=local is not None)) for w in found]
