"""The delivery writes around a send: queue, withdraw, requeue, and what webhooks report afterwards.

Every status change here is one ``UPDATE … WHERE status = <the status it changes from>``, so a change can
never undo another made meanwhile (a delivery claimed, recorded or withdrawn by someone else stays as they left
it). Functions taking a ``Session`` write in the caller's transaction, so that the change they belong to (an
issue cancelled, a reader suppressed) commits or rolls back with them.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, delete, false, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

from newsletter.db import session_scope
from newsletter.deliveries.batches import BATCHES, DEFAULT_SIZE, TABLE, assign
from newsletter.deliveries.leases import UNKNOWN_OUTCOME
from newsletter.models import IssueCohortRow, IssueRow
from newsletter.recipients import RecipientSource
from newsletter.statuses import DeliveryStatus
from newsletter.zones import LocalTime

COHORTS: Any = IssueCohortRow.__table__  # type: ignore[attr-defined]
QUEUED = DeliveryStatus.QUEUED


def queue(session: Session, issue: IssueRow, source: RecipientSource, *, page_size: int = 1000) -> int:
    """Queue a delivery for every active subscriber of a rendered cohort who has none yet; returns how many.

    Idempotent (the pair is unique and existing pairs are skipped), so it runs at build time and again
    when sending starts, to include subscribers who joined in between. Subscribers whose cohort got no
    snapshot (nothing this week matched their preferences) get nothing.
    """
    assert issue.id is not None
    rendered = set(session.connection().execute(select(COHORTS.c.cohort_key).where(COHORTS.c.issue_id == issue.id))
                   .scalars())
    queued = 0
    for cohort, _size in source.cohorts():
        if cohort.key not in rendered:
            continue
        after = 0
        while ids := source.recipient_ids(cohort, after=after, limit=page_size):
            after = ids[-1]
            queued += _insert_missing(session, issue.id, cohort.key, _by_zone(source, ids))
    return queued


def _by_zone(source: RecipientSource, ids: list[int]) -> list[int]:
    """A page of readers grouped by time zone, so that each wave's deliveries get runs of consecutive ids.

    With local delivery a claim takes one wave's rows; scattered one in 24 over the table, they would sit on a
    page each, and claiming and recording a batch would write 25 times the pages (measured: 3-4x the time).
    """
    zones = source.time_zones(ids)
    return sorted(ids, key=lambda i: (zones.get(i) or "", i))


def _insert_missing(session: Session, issue_id: int, cohort_key: str, ids: list[int]) -> int:
    """Insert the pairs that don't exist yet and count them; the unique (issue, subscriber) key decides.

    No existence query first: inside one long transaction on a fresh table, PostgreSQL has no statistics
    and would scan every delivery inserted so far for each page, making a 100,000-reader build quadratic.
    """
    rows = [{"issue_id": issue_id, "subscriber_id": i, "cohort_key": cohort_key, "status": QUEUED, "attempts": 0}
            for i in ids]
    connection = session.connection()
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(TABLE).on_conflict_do_nothing().returning(TABLE.c.id)
    return len(connection.execute(statement, rows).all())


def schedule(session: Session, issue_id: int, *, start: datetime, local: LocalTime | None = None,
             source: RecipientSource | None = None, size: int = DEFAULT_SIZE, page_size: int = 1000) -> int:
    """Give each queued delivery of the issue that has no batch yet its due time and its batch; returns how many.

    Without ``local`` the due time is ``start`` (everyone at once); with it, the reader's next local send time
    after ``start``, the readers' zones read from ``source``. Batches hold up to ``size`` deliveries of one due
    time (see :func:`~newsletter.deliveries.batches.assign`). Rows that have a due time and a batch keep them, so
    starting again (a resume, a second sender) moves no wave and remakes no batch.
    """
    return assign(session.connection(), issue_id, start=start, local=local, source=source, size=size,
                  page_size=page_size)


def reschedule_reader(session: Session, subscriber_id: int, zone: str | None, *, local: LocalTime,
                      now: datetime) -> int:
    """Move the reader's deliveries still waiting for their wave to their next local send time in ``zone`` (they
    changed zone), each into a batch of its new time; returns how many. A delivery due already, or in a batch
    claimed before, keeps its time: it is on its way."""
    connection = session.connection()
    waiting = (TABLE.c.subscriber_id == subscriber_id) & (TABLE.c.status == QUEUED) & (TABLE.c.due_at > now) & (
        TABLE.c.batch_id.is_(None) | TABLE.c.batch_id.in_(select(BATCHES.c.id).where(BATCHES.c.fresh)))
    issue_ids = list(connection.execute(select(TABLE.c.issue_id).where(waiting).distinct()).scalars())
    moved = int(connection.execute(update(TABLE).where(waiting).values(due_at=local.due(zone, now),
                                                                       batch_id=None)).rowcount)
    rebatch(connection, issue_ids)
    return moved


def rebatch(connection: Connection, issue_ids: Collection[int]) -> None:
    """Batch the queued deliveries of these issues that have none (queued again, or moved to another wave)."""
    for issue_id in sorted(set(issue_ids)):
        assign(connection, issue_id, start=datetime.now(UTC))


def remove_unrendered(session: Session, issue_id: int, cohort_keys: Collection[str]) -> int:
    """Delete the issue's queued deliveries of cohorts no longer rendered (an edit left them nothing); returns
    how many.

    Deleted, not withdrawn: before sending starts a queued row is only a plan, and should the edit be undone,
    :func:`queue` adds those readers again.
    """
    result = session.connection().execute(delete(TABLE).where(
        TABLE.c.issue_id == issue_id, TABLE.c.status == QUEUED, TABLE.c.cohort_key.not_in(list(cohort_keys))))
    return int(result.rowcount)


def withdraw_issue(session: Session, issue_id: int, *, reason: str) -> int:
    """Withdraw every queued delivery of the issue (it was cancelled) and close its batches, leases cleared;
    returns how many.

    Rows in flight are withdrawn too: their sender's fenced record then writes nothing for them.
    """
    connection = session.connection()
    result = connection.execute(update(TABLE).where(TABLE.c.issue_id == issue_id, TABLE.c.status == QUEUED)
                                .values(status=DeliveryStatus.WITHDRAWN, reason=reason))
    connection.execute(update(BATCHES).where(BATCHES.c.issue_id == issue_id, BATCHES.c.done == false())
                       .values(done=True, lease_until=None, lease_key=None))
    return int(result.rowcount)


def withdraw_reader(session: Session, subscriber_ids: Sequence[int], *, reason: str) -> int:
    """Withdraw the readers' queued deliveries of every issue (they left), so a send under way skips them;
    returns how many. The lease stays: a sender holding one finds it withdrawn when it records."""
    result = session.connection().execute(WITHDRAW_READERS, {"readers": list(subscriber_ids), "reason": reason})
    return int(result.rowcount)


# Built once: it runs with every unsubscribe, bounce and complaint.
WITHDRAW_READERS = (update(TABLE).where(TABLE.c.subscriber_id.in_(bindparam("readers", expanding=True)),
                                        TABLE.c.status == QUEUED)
                    .values(status=DeliveryStatus.WITHDRAWN, reason=bindparam("reason", type_=TABLE.c.reason.type)))


# What a webhook may mark: any delivery not marked so already. The service's word wins over what was recorded
# here (a failure with an unknown outcome that did go out, a batch still in flight whose record then finds its
# row settled and writes nothing), and a bounce reported after a complaint is still the latest word.
REPORTABLE = {reported: tuple(s for s in DeliveryStatus if s != reported)
              for reported in (DeliveryStatus.BOUNCED, DeliveryStatus.COMPLAINED)}


def mark_reported(session: Session, delivery_id: int, status: DeliveryStatus) -> bool:
    """Mark a delivery ``bounced`` or ``complained``, as the provider's webhook says; False when its status
    cannot become that (see :data:`REPORTABLE`)."""
    result = session.connection().execute(
        update(TABLE).where(TABLE.c.id == delivery_id, TABLE.c.status.in_(REPORTABLE[status])).values(status=status))
    return int(result.rowcount) == 1


def subscriber_of(session: Session, delivery_id: int) -> int | None:
    """The subscriber a delivery was for (a webhook names the delivery), or None for an unknown id."""
    return session.connection().execute(SUBSCRIBER_OF, {"delivery_id": delivery_id}).scalar()


SUBSCRIBER_OF = select(TABLE.c.subscriber_id).where(TABLE.c.id == bindparam("delivery_id"))  # per webhook event


def failed_where(*, attempts_below: int | None = None, unknown_outcome: bool = True) -> Any:
    """Failed deliveries to queue again: all of them, or only those tried fewer than ``attempts_below`` times,
    and with ``unknown_outcome=False`` not those that may have gone out (a timeout after the request)."""
    where = TABLE.c.status == DeliveryStatus.FAILED
    if attempts_below is not None:
        where = where & (TABLE.c.attempts < attempts_below)
    if not unknown_outcome:
        where = where & ~TABLE.c.reason.startswith(UNKNOWN_OUTCOME)
    return where


def issues_with_failed(session: Session, issue_ids: Any, **which: Any) -> list[int]:
    """Ids among ``issue_ids`` (a list or a subquery) with failed deliveries worth queueing again (``which``:
    see :func:`failed_where`); one DISTINCT over the claim index rather than one query per issue."""
    query = select(TABLE.c.issue_id).where(TABLE.c.issue_id.in_(issue_ids), failed_where(**which)).distinct()
    return list(session.connection().execute(query).scalars())


def requeue_failed(engine: Engine, issue_id: int, **which: Any) -> int:
    """Put the issue's failed deliveries (``which``: see :func:`failed_where`) back in the queue, in fresh
    batches of their due time; returns how many."""
    with session_scope(engine) as session:
        connection = session.connection()
        result = connection.execute(update(TABLE).where(TABLE.c.issue_id == issue_id, failed_where(**which))
                                    .values(status=QUEUED, batch_id=None, reason=None, failed_at=None))
        rebatch(connection, [issue_id])
    return int(result.rowcount)


def queued_left(engine: Engine, issue_id: int) -> int:
    """How many deliveries of the issue are still queued: none left means the send is finished."""
    with session_scope(engine) as session:
        return int(session.connection().execute(select(func.count()).select_from(TABLE).where(
            TABLE.c.issue_id == issue_id, TABLE.c.status == QUEUED)).scalar_one())


def settled_subscribers(session: Session, issue: IssueRow) -> set[int]:
    """Subscribers whose delivery of this issue has an outcome (anything but queued): a send skips them."""
    query = select(TABLE.c.subscriber_id).where(TABLE.c.issue_id == issue.id, TABLE.c.status != QUEUED)
    return set(session.connection().execute(query).scalars())
