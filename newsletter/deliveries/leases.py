"""The delivery writes of a send: claim a batch under a lease, renew it, record its results, release it.

A claimed batch gets a ``batch_key``. If its sender dies, the batch is claimed again *whole*, under the same
key, once the lease expires, so a provider with idempotency keys (Resend) sees the very same request and
sends it once. Claims are single atomic ``UPDATE … RETURNING`` statements; on PostgreSQL the candidate rows
are picked ``FOR UPDATE SKIP LOCKED`` so that workers never wait on each other.

Every claim also gets its own ``lease_key``. A lease protects a batch only while it is held, so every write
(record, renew, release) is fenced with that key: a sender whose lease ran out and whose batch was taken
back writes nothing. While a batch is in flight, :class:`Keeper` renews its lease, however long the
service takes to answer. Lease times come from the ``Clock`` the sender was given (a ``ManualClock`` in tests),
so a test moves time instead of rewriting stored leases or sleeping.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from newsletter.clock import SYSTEM, Clock
from newsletter.db import session_scope
from newsletter.models import DeliveryRow
from newsletter.statuses import DeliveryStatus
from newsletter.values import SendResult

TABLE: Any = DeliveryRow.__table__  # type: ignore[attr-defined]
# Starts the reason of a batch that failed with its fate unknown (a timeout after the request went out).
UNKNOWN_OUTCOME = "outcome unknown: "
WITHDRAWN_AT_SEND = "subscriber no longer active"
log = logging.getLogger("newsletter.deliveries")


@dataclass(frozen=True, slots=True)
class Claim:
    """A leased batch: its key, (delivery id, subscriber id, cohort key) rows in id order, the key of this lease,
    whether the batch was claimed before (so it may have reached the service already) and, if so, when the
    previous lease ran out (None once housekeeping cleared it): its request went out before then, if at all."""

    key: str
    rows: tuple[tuple[int, int, str], ...]
    lease_key: str = ""
    reclaimed: bool = False
    expired: datetime | None = None

    @property
    def ids(self) -> list[int]:
        """The batch's delivery ids."""
        return [delivery for delivery, _, _ in self.rows]


def claim(engine: Engine, issue_id: int, size: int, lease: timedelta, *, clock: Clock = SYSTEM) -> Claim | None:
    """Lease the next batch: an abandoned one whole if any, else up to ``size`` fresh queued deliveries."""
    now = clock.now()
    with session_scope(engine) as session:
        connection = session.connection()
        return _abandoned(connection, engine, issue_id, now, lease) or _fresh(connection, engine, issue_id, size,
                                                                            now, lease)


def _free(now: datetime) -> Any:
    """Queued rows nobody holds: never leased, or whose lease ran out (its sender died or stalled)."""
    return (TABLE.c.status == DeliveryStatus.QUEUED) & (TABLE.c.lease_until.is_(None) | (TABLE.c.lease_until < now))


def _pick(engine: Engine, query: Any) -> Any:
    """``query`` locking the rows it picks on PostgreSQL, skipping those another claimant holds (SQLite has one
    writer, so there is nothing to skip)."""
    return query.with_for_update(skip_locked=True) if engine.dialect.name == "postgresql" else query


def _lease(connection: Connection, where: Any, now: datetime, lease: timedelta, key: str,
           reclaimed: bool, expired: datetime | None = None) -> Claim | None:
    """Lease the rows of ``where`` under batch ``key`` and a fresh lease key, in one ``UPDATE … RETURNING`` (so no
    other claimant can slip in between a read and the write); None when no row was free."""
    token = uuid.uuid4().hex
    rows = connection.execute(
        update(TABLE).where(where).values(lease_until=now + lease, attempts=TABLE.c.attempts + 1, batch_key=key,
                                          lease_key=token)
        .returning(TABLE.c.id, TABLE.c.subscriber_id, TABLE.c.cohort_key)).all()
    return Claim(key, tuple(sorted((r[0], r[1], r[2]) for r in rows)), token, reclaimed, expired) if rows else None


def _abandoned(connection: Connection, engine: Engine, issue_id: int, now: datetime, lease: timedelta) -> Claim | None:
    """Take back a batch whose lease ran out, whole and under its key (it may have reached the service)."""
    # Finding the key takes no lock: locking one row here and the batch in id order below would let two
    # claimants each hold a row the other needs (a deadlock the crash test found).
    # In the claim index's order (due time, then id), so the index serves the search and its order: ordered by id
    # alone, the planner walks the issue's every delivery, sent ones included.
    query = select(TABLE.c.batch_key, TABLE.c.lease_until).where(
        TABLE.c.issue_id == issue_id, TABLE.c.batch_key.is_not(None), _free(now)).order_by(
        TABLE.c.due_at, TABLE.c.id).limit(1)
    found = connection.execute(query).first()
    if found is None:
        return None
    key, expired = found
    # Lock the whole batch in id order (never skipping, so a batch is never split): a second claimant of the
    # same key waits instead of deadlocking, then finds the lease taken and gets nothing.
    rows = select(TABLE.c.id).where(TABLE.c.issue_id == issue_id, TABLE.c.batch_key == key, _free(now)).order_by(
        TABLE.c.id)
    if engine.dialect.name == "postgresql":
        rows = rows.with_for_update()
    return _lease(connection, TABLE.c.id.in_(rows.scalar_subquery()), now, lease, key, True, expired)


def _fresh(connection: Connection, engine: Engine, issue_id: int, size: int, now: datetime,
           lease: timedelta) -> Claim | None:
    """Lease up to ``size`` queued deliveries never claimed before that are due, earliest due first, then in id
    order, as a new batch.

    The order is the claim index's (issue, status, due time, id): the scan starts at the issue's earliest queued
    row and stops at the first not yet due, so waves still ahead cost a claim nothing.
    """
    ids = _pick(engine, select(TABLE.c.id).where(
        TABLE.c.issue_id == issue_id, TABLE.c.batch_key.is_(None), TABLE.c.due_at <= now, _free(now))
        .order_by(TABLE.c.due_at, TABLE.c.id).limit(size))
    return _lease(connection, TABLE.c.id.in_(ids.scalar_subquery()), now, lease, uuid.uuid4().hex, False)


def _fenced(claim: Claim, ids: Sequence[int]) -> Any:
    """The rows of ``ids`` that ``claim`` still holds: queued, and leased under its key."""
    return (TABLE.c.id.in_(list(ids)) & (TABLE.c.lease_key == claim.lease_key)
            & (TABLE.c.status == DeliveryStatus.QUEUED))


def record(engine: Engine, claim: Claim, results: Sequence[SendResult] = (), *, withdrawn: Sequence[int] = (),
           failed: Sequence[int] = (), reason: str | None = None, clock: Clock = SYSTEM) -> set[int]:
    """Write outcomes of a claimed batch and clear their lease, in one transaction, only for rows the claim still
    holds; returns the delivery ids written (none when the lease ran out and another sender took them back).

    ``withdrawn`` are deliveries of readers who left before the batch was sent; ``failed`` share ``reason``.
    """
    moment = clock.now()
    params = [{"b_id": r.delivery_id, "b_status": r.status, "b_pid": r.provider_id, "b_reason": r.reason,
               "b_at": moment if r.submitted else None, "b_failed": None} for r in results]
    params += [{"b_id": d, "b_status": DeliveryStatus.WITHDRAWN, "b_pid": None, "b_reason": WITHDRAWN_AT_SEND,
                "b_at": None, "b_failed": None} for d in withdrawn]
    params += [{"b_id": d, "b_status": DeliveryStatus.FAILED, "b_pid": None, "b_reason": reason, "b_at": None,
                "b_failed": moment} for d in failed]
    if not params:
        return set()
    statement = (update(TABLE).where(TABLE.c.id == bindparam("b_id"), TABLE.c.status == DeliveryStatus.QUEUED,
                                     TABLE.c.lease_key == claim.lease_key)
                 .values(status=bindparam("b_status"), provider_id=bindparam("b_pid"), reason=bindparam("b_reason"),
                         submitted_at=bindparam("b_at"), failed_at=bindparam("b_failed"), lease_until=None))
    with session_scope(engine) as session:
        connection = session.connection()
        # The no-op UPDATE takes the rows' locks (the write lock on SQLite) and says which are still ours, so
        # nobody can take them back between the check and the write.
        held = {row[0] for row in connection.execute(
            update(TABLE).where(_fenced(claim, [r.delivery_id for r in results] + [*withdrawn, *failed]))
            .values(lease_key=TABLE.c.lease_key).returning(TABLE.c.id))}
        if mine := [p for p in params if p["b_id"] in held]:
            connection.execute(statement, mine)
    return held


def renew(engine: Engine, claim: Claim, lease: timedelta, *, clock: Clock = SYSTEM) -> bool:
    """Extend the claim's lease to now + ``lease``; False when it holds no row any more (taken back or recorded)."""
    moment = clock.now()
    with session_scope(engine) as session:
        connection = session.connection()
        result = connection.execute(update(TABLE).where(_fenced(claim, claim.ids)).values(lease_until=moment + lease))
    return int(result.rowcount) > 0


def release(engine: Engine, claim: Claim, *, unsent: bool = False) -> None:
    """Give a batch back. It keeps its key, so it is retried as the same batch (it may have reached the
    service); with ``unsent`` (the service surely took nothing) its rows go back to the queue as fresh ones."""
    values: dict[str, Any] = {"lease_until": None}
    if unsent:
        values |= {"batch_key": None, "lease_key": None}
    with session_scope(engine) as session:
        connection = session.connection()
        connection.execute(update(TABLE).where(_fenced(claim, claim.ids)).values(**values))


class Keeper:
    """Renews a claim's lease every third of it, from a background thread, while its batch is in flight.

    Slow answers, 429 waits and retries can outlast any lease; renewing keeps another sender from taking the
    batch back meanwhile. If a renewal finds the lease gone (this process stalled past it), ``held`` turns
    False; the fenced record then writes nothing, so the batch is still counted once. The renewals are paced in
    real time (a thread waits); the lease they write is read from ``clock``.
    """

    def __init__(self, engine: Engine, claim: Claim, lease: timedelta, *, clock: Clock = SYSTEM) -> None:
        self.engine, self.claim, self.lease, self.clock = engine, claim, lease, clock
        self.held = True
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{claim.key[:8]}", daemon=True)

    def __enter__(self) -> Keeper:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.lease.total_seconds() / 3):
            try:
                self.held = renew(self.engine, self.claim, self.lease, clock=self.clock)
            except SQLAlchemyError as exc:  # the database blinked: try again next tick; fencing keeps records right
                log.warning("could not renew the lease of batch %s: %s", self.claim.key, exc)
                continue
            if not self.held:
                log.warning("batch %s was taken back by another sender after its lease ran out", self.claim.key)
                return


def release_expired(engine: Engine, *, clock: Clock = SYSTEM) -> int:
    """Clear leases that ran out on queued deliveries (their sender died); returns how many.

    The batch key stays, so the batch is still claimed again whole and an idempotent provider sees the same
    request. Claims would take these over anyway; clearing them keeps the queue's state honest for operators.
    No status changes, so the only guard is the one that matters: still queued, and the lease really over.
    """
    with session_scope(engine) as session:
        connection = session.connection()
        result = connection.execute(update(TABLE).where(TABLE.c.status == DeliveryStatus.QUEUED,
                                                        TABLE.c.lease_until < clock.now()).values(lease_until=None))
    return int(result.rowcount)
