"""The writes that settle a delivery whose outcome was unknown (a timeout or a crash after the request went out).

Only ``failed`` rows whose reason starts with :data:`~newsletter.deliveries.leases.UNKNOWN_OUTCOME` are touched,
each change one guarded ``UPDATE … WHERE status = 'failed' AND reason LIKE 'outcome unknown: %'``: a delivery
settled once (by a webhook, the provider's search, or an operator) is never settled again, so none is queued
twice. The service's own record decides: an event or a search hit makes it ``submitted``; a confident miss
queues it again as a fresh delivery.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from newsletter.db import session_scope
from newsletter.deliveries.batches import TABLE
from newsletter.deliveries.leases import UNKNOWN_OUTCOME
from newsletter.deliveries.queue import rebatch
from newsletter.statuses import DeliveryStatus


def unknown_where() -> Any:
    """Failed deliveries whose fate is unknown: the request may have reached the service."""
    return (TABLE.c.status == DeliveryStatus.FAILED) & TABLE.c.reason.startswith(UNKNOWN_OUTCOME)


def unknown_outcomes(engine: Engine, issue_id: int) -> list[tuple[int, int, datetime | None]]:
    """The issue's deliveries with an unknown outcome: (delivery id, subscriber id, when it failed), by id."""
    query = select(TABLE.c.id, TABLE.c.subscriber_id, TABLE.c.failed_at).where(
        TABLE.c.issue_id == issue_id, unknown_where()).order_by(TABLE.c.id)
    with session_scope(engine) as session:
        return [(row[0], row[1], row[2]) for row in session.connection().execute(query)]


def issues_with_unknown(session: Session, since: datetime) -> list[int]:
    """Ids of issues with unknown outcomes that failed at or after ``since`` (older ones are the operator's)."""
    query = select(TABLE.c.issue_id).where(unknown_where(), TABLE.c.failed_at >= since).distinct()
    return list(session.connection().execute(query).scalars())


def settle_reported(session: Session, delivery_id: int, *, moment: datetime) -> bool:
    """A webhook named this delivery, so the service has it: an unknown outcome becomes ``submitted`` (in the
    caller's transaction, with the event); False when it was not unknown."""
    result = session.connection().execute(SETTLE_REPORTED, {"delivery_id": delivery_id, "moment": moment})
    return int(result.rowcount) == 1


# Built once: it runs for every webhook event naming a delivery, and building the UPDATE was most of its time.
SETTLE_REPORTED = update(TABLE).where(TABLE.c.id == bindparam("delivery_id"), unknown_where()).values(
    status=DeliveryStatus.SUBMITTED, reason=None, failed_at=None,
    submitted_at=bindparam("moment", type_=TABLE.c.submitted_at.type))


def settle_accepted(engine: Engine, ids: Collection[int], *, moment: datetime) -> int:
    """The provider's search found these: their unknown outcomes become ``submitted``; returns how many."""
    if not ids:
        return 0
    with session_scope(engine) as session:
        result = session.connection().execute(update(TABLE).where(TABLE.c.id.in_(list(ids)), unknown_where()).values(
            status=DeliveryStatus.SUBMITTED, reason=None, failed_at=None, submitted_at=moment))
    return int(result.rowcount)


def settle_unsent(engine: Engine, ids: Collection[int]) -> int:
    """The provider's search surely has no trace of these: queue them again, in fresh batches; returns how
    many (a row settled meanwhile, by a webhook, is not queued)."""
    if not ids:
        return 0
    where = TABLE.c.id.in_(list(ids)) & unknown_where()
    with session_scope(engine) as session:
        connection = session.connection()
        issue_ids = list(connection.execute(select(TABLE.c.issue_id).where(where).distinct()).scalars())
        result = connection.execute(update(TABLE).where(where).values(status=DeliveryStatus.QUEUED, reason=None,
                                                                      failed_at=None, batch_id=None))
        rebatch(connection, issue_ids)
    return int(result.rowcount)
