"""The delivery queries of a send: claim a batch under a lease, record its results, release it.

A claimed batch gets a ``batch_key``. If its sender dies, the batch is claimed again *whole*, under the same
key, once the lease expires, so a provider with idempotency keys (Resend) sees the very same request and
sends it once. Claims are single atomic ``UPDATE … RETURNING`` statements; on PostgreSQL the candidate rows
are picked ``FOR UPDATE SKIP LOCKED`` so that workers never wait on each other.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.engine import Connection, Engine

from newsletter.models import DeliveryRow
from newsletter.values import SendResult

TABLE: Any = DeliveryRow.__table__  # type: ignore[attr-defined]
# Starts the reason of a batch that failed with its fate unknown (a timeout after the request went out).
UNKNOWN_OUTCOME = "outcome unknown: "


@dataclass(frozen=True, slots=True)
class Claim:
    """A leased batch: its key and (delivery id, subscriber id, cohort key) rows in id order."""

    key: str
    rows: tuple[tuple[int, int, str], ...]


def claim(engine: Engine, issue_id: int, size: int, lease: timedelta) -> Claim | None:
    """Lease the next batch: an abandoned one whole if any, else up to ``size`` fresh queued deliveries."""
    now = datetime.now(UTC)
    with engine.begin() as connection:
        return _abandoned(connection, engine, issue_id, now, lease) or _fresh(connection, engine, issue_id, size,
                                                                            now, lease)


def _free(now: datetime) -> Any:
    return (TABLE.c.status == "queued") & (TABLE.c.lease_until.is_(None) | (TABLE.c.lease_until < now))


def _pick(engine: Engine, query: Any) -> Any:
    return query.with_for_update(skip_locked=True) if engine.dialect.name == "postgresql" else query


def _lease(connection: Connection, where: Any, now: datetime, lease: timedelta, key: str) -> Claim | None:
    rows = connection.execute(
        update(TABLE).where(where).values(lease_until=now + lease, attempts=TABLE.c.attempts + 1, batch_key=key)
        .returning(TABLE.c.id, TABLE.c.subscriber_id, TABLE.c.cohort_key)).all()
    return Claim(key, tuple(sorted((r[0], r[1], r[2]) for r in rows))) if rows else None


def _abandoned(connection: Connection, engine: Engine, issue_id: int, now: datetime, lease: timedelta) -> Claim | None:
    # Finding the key takes no lock: locking one row here and the batch in id order below would let two
    # claimants each hold a row the other needs (a deadlock the crash test found).
    query = select(TABLE.c.batch_key).where(TABLE.c.issue_id == issue_id, TABLE.c.batch_key.is_not(None),
                                            _free(now)).order_by(TABLE.c.id).limit(1)
    key = connection.execute(query).scalar()
    if key is None:
        return None
    # Lock the whole batch in id order (never skipping, so a batch is never split): a second claimant of the
    # same key waits instead of deadlocking, then finds the lease taken and gets nothing.
    rows = select(TABLE.c.id).where(TABLE.c.issue_id == issue_id, TABLE.c.batch_key == key, _free(now)).order_by(
        TABLE.c.id)
    if engine.dialect.name == "postgresql":
        rows = rows.with_for_update()
    return _lease(connection, TABLE.c.id.in_(rows.scalar_subquery()), now, lease, key)


def _fresh(connection: Connection, engine: Engine, issue_id: int, size: int, now: datetime,
           lease: timedelta) -> Claim | None:
    ids = _pick(engine, select(TABLE.c.id).where(
        TABLE.c.issue_id == issue_id, TABLE.c.batch_key.is_(None), _free(now)).order_by(TABLE.c.id).limit(size))
    return _lease(connection, TABLE.c.id.in_(ids.scalar_subquery()), now, lease, uuid.uuid4().hex)


def record(engine: Engine, results: Sequence[SendResult], *, dropped: Sequence[int] = (),
           failed: Sequence[int] = (), reason: str | None = None) -> None:
    """Write every outcome of a batch and clear its lease, in one transaction."""
    now = datetime.now(UTC)
    params = [{"b_id": r.delivery_id, "b_status": r.status, "b_pid": r.provider_id, "b_reason": r.reason,
               "b_at": now if r.status == "submitted" else None} for r in results]
    params += [{"b_id": d, "b_status": "dropped", "b_pid": None, "b_reason": "subscriber no longer active",
                "b_at": None} for d in dropped]
    params += [{"b_id": d, "b_status": "failed", "b_pid": None, "b_reason": reason, "b_at": None} for d in failed]
    if not params:
        return
    statement = (update(TABLE).where(TABLE.c.id == bindparam("b_id"))
                 .values(status=bindparam("b_status"), provider_id=bindparam("b_pid"), reason=bindparam("b_reason"),
                         submitted_at=bindparam("b_at"), lease_until=None))
    with engine.begin() as connection:
        connection.execute(statement, params)


def release(engine: Engine, ids: Sequence[int]) -> None:
    """Give a batch back (the provider is unavailable); it keeps its key, so it is retried as the same batch."""
    with engine.begin() as connection:
        connection.execute(update(TABLE).where(TABLE.c.id.in_(ids)).values(lease_until=None))


def failed_where(*, attempts_below: int | None = None, unknown_outcome: bool = True) -> Any:
    """Failed deliveries to queue again: all of them, or only those tried fewer than ``attempts_below`` times,
    and with ``unknown_outcome=False`` not those that may have gone out (a timeout after the request)."""
    where = TABLE.c.status == "failed"
    if attempts_below is not None:
        where = where & (TABLE.c.attempts < attempts_below)
    if not unknown_outcome:
        where = where & ~TABLE.c.reason.startswith(UNKNOWN_OUTCOME)
    return where


def requeue_failed(engine: Engine, issue_id: int, **which: Any) -> int:
    """Put the issue's failed deliveries (``which``: see :func:`failed_where`) back in the queue as fresh
    batches; returns how many."""
    with engine.begin() as connection:
        result = connection.execute(update(TABLE).where(TABLE.c.issue_id == issue_id, failed_where(**which))
                                    .values(status="queued", batch_key=None, lease_until=None, reason=None))
    return int(result.rowcount)


def queued_left(engine: Engine, issue_id: int) -> int:
    """How many deliveries of the issue are still queued."""
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(TABLE).where(
            TABLE.c.issue_id == issue_id, TABLE.c.status == "queued")).scalar_one())
