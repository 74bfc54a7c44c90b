"""The writes of a send: claim a batch under a lease, renew it, record its results, release it.

A batch (``batches``) is fixed before the send and keeps its ``key``. If its sender dies, the batch is claimed
again *whole*, under the same key, once the lease expires, so a provider with idempotency keys (Resend) sees the
very same request and sends it once. A claim writes the batch row only (on PostgreSQL it is picked
``FOR UPDATE SKIP LOCKED`` so that workers never wait on each other; SQLite has one writer); each delivery row
is then written once, with its result.

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

from sqlalchemy import bindparam, exists, false, func, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from newsletter.clock import SYSTEM, Clock
from newsletter.db import session_scope
from newsletter.deliveries.batches import BATCHES, TABLE, new_batch
from newsletter.statuses import DeliveryStatus
from newsletter.values import SendResult

# Starts the reason of a batch that failed with its fate unknown (a timeout after the request went out).
UNKNOWN_OUTCOME = "outcome unknown: "
WITHDRAWN_AT_SEND = "subscriber no longer active"
QUEUED = DeliveryStatus.QUEUED
OPEN = BATCHES.c.done == false()
log = logging.getLogger("newsletter.deliveries")


@dataclass(frozen=True, slots=True)
class Claim:
    """A leased batch: its key, (delivery id, subscriber id, cohort key) rows in id order, the key of this lease,
    whether the batch was claimed before (so it may have reached the service already) and, if so, when the
    previous lease ran out (None once housekeeping cleared it): its request went out before then, if at all.
    ``batch`` is the batch row's id and ``claims`` how many times it has been claimed, this claim included."""

    key: str
    rows: tuple[tuple[int, int, str], ...]
    lease_key: str = ""
    reclaimed: bool = False
    expired: datetime | None = None
    batch: int = 0
    claims: int = 1

    @property
    def ids(self) -> list[int]:
        """The batch's delivery ids."""
        return [delivery for delivery, _, _ in self.rows]


def claim(engine: Engine, issue_id: int, size: int, lease: timedelta, *, clock: Clock = SYSTEM) -> Claim | None:
    """Lease the issue's next due batch, earliest due time first, then oldest: one abandoned by a sender that died
    comes back whole, under its key (it may have reached the service); a fresh one of more than ``size``
    deliveries keeps its first ``size`` and the rest become a fresh batch of their own (no service has seen
    either). A batch with nothing queued left is closed on the way. None when no batch is free and due."""
    now = clock.now()
    with session_scope(engine) as session:
        connection = session.connection()
        _write_lock(connection)
        while (picked := connection.execute(_next(engine, issue_id, now)).first()) is not None:
            rows = _queued(connection, engine, picked.id, lock=False)
            if not rows:  # every delivery of it was withdrawn or settled elsewhere
                connection.execute(update(BATCHES).where(BATCHES.c.id == picked.id).values(done=True,
                                                                                          lease_until=None))
                continue
            if picked.fresh and len(rows) > size:
                rows = _cut(connection, picked, rows, size)
            token = uuid.uuid4().hex
            connection.execute(update(BATCHES).where(BATCHES.c.id == picked.id).values(
                lease_until=now + lease, lease_key=token, claims=BATCHES.c.claims + 1, fresh=False))
            return Claim(picked.key, tuple((r[0], r[1], r[2]) for r in rows), token, not picked.fresh,
                         None if picked.fresh else picked.lease_until, picked.id, picked.claims + 1)
    return None


def _free(now: datetime) -> Any:
    """Open batches nobody holds: never leased, released, or whose lease ran out (its sender died or stalled)."""
    return OPEN & (BATCHES.c.lease_until.is_(None) | (BATCHES.c.lease_until < now))


def _write_lock(connection: Connection) -> None:
    """On SQLite, take the write lock first (an UPDATE that changes nothing), so that two claimants queue for it
    instead of both reading the same free batch and one failing to upgrade its read to a write."""
    if connection.dialect.name != "postgresql":
        connection.execute(update(BATCHES).where(BATCHES.c.id == -1).values(claims=BATCHES.c.claims))


def _next(engine: Engine, issue_id: int, now: datetime) -> Any:
    """The first free due batch in the claim index's order (issue, open, due time, id), locked on PostgreSQL,
    skipping the batches other claimants hold."""
    query = select(BATCHES.c.id, BATCHES.c.issue_id, BATCHES.c.key, BATCHES.c.lease_until, BATCHES.c.fresh,
                   BATCHES.c.claims, BATCHES.c.due_at).where(
        BATCHES.c.issue_id == issue_id, BATCHES.c.due_at <= now, _free(now)).order_by(BATCHES.c.due_at, BATCHES.c.id)
    query = query.limit(1)
    return query.with_for_update(skip_locked=True) if engine.dialect.name == "postgresql" else query


def _queued(connection: Connection, engine: Engine, batch: int, *, lock: bool) -> list[Any]:
    """The batch's queued deliveries (id, subscriber, cohort) in id order; with ``lock``, locked on PostgreSQL
    until the transaction ends, so that nobody (a reader withdrawn) changes them between this read and a write."""
    query = select(TABLE.c.id, TABLE.c.subscriber_id, TABLE.c.cohort_key).where(
        TABLE.c.batch_id == batch, TABLE.c.status == QUEUED).order_by(TABLE.c.id)
    if lock and engine.dialect.name == "postgresql":
        query = query.with_for_update()
    return list(connection.execute(query).all())


def _cut(connection: Connection, picked: Any, rows: list[Any], size: int) -> list[Any]:
    """Keep a fresh batch's first ``size`` deliveries and move the rest to a new fresh batch of the same due time.

    Only a claim with a smaller size than the batches were made with does this (a sender configured apart from
    the one that started the send, or a test): the batch was never claimed, so no service has seen it.
    """
    rest = new_batch(connection, picked.issue_id, picked.due_at)
    connection.execute(update(TABLE).where(TABLE.c.batch_id == picked.id, TABLE.c.status == QUEUED,
                                           TABLE.c.id > rows[size - 1][0]).values(batch_id=rest))
    return rows[:size]


def _hold(connection: Connection, claim: Claim) -> bool:
    """Whether ``claim`` still holds its batch's lease, taking the batch row's lock (the write lock on SQLite) for
    the rest of the transaction, so nobody can take the batch back between this check and the writes after it."""
    mine = (BATCHES.c.id == claim.batch) & (BATCHES.c.lease_key == claim.lease_key)
    if connection.dialect.name == "postgresql":
        return connection.execute(select(BATCHES.c.id).where(mine).with_for_update()).first() is not None
    return int(connection.execute(update(BATCHES).where(mine).values(claims=BATCHES.c.claims)).rowcount) == 1


def record(engine: Engine, claim: Claim, results: Sequence[SendResult] = (), *, withdrawn: Sequence[int] = (),
           failed: Sequence[int] = (), reason: str | None = None, clock: Clock = SYSTEM) -> set[int]:
    """Write outcomes of a claimed batch, in one transaction, only while the claim holds the batch and only for its
    deliveries still queued; returns the delivery ids written (none when the lease ran out and another sender
    took the batch back). Once none of the batch is queued, its lease is released and it is closed.

    ``withdrawn`` are deliveries of readers who left before the batch was sent; ``failed`` share ``reason``.
    Each delivery row is written once: its outcome, and its attempts grown by the batch's claims.
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
    statement = (update(TABLE).where(TABLE.c.id == bindparam("b_id"), TABLE.c.status == QUEUED)
                 .values(status=bindparam("b_status"), provider_id=bindparam("b_pid"), reason=bindparam("b_reason"),
                         submitted_at=bindparam("b_at"), failed_at=bindparam("b_failed"),
                         attempts=TABLE.c.attempts + claim.claims))
    with session_scope(engine) as session:
        connection = session.connection()
        if not _hold(connection, claim):
            return set()
        # Locked (PostgreSQL) while the batch row is held: a reader withdrawn meanwhile waits for this commit, or
        # was withdrawn before and is not written here.
        held = {row[0] for row in _queued(connection, engine, claim.batch, lock=True)} & {p["b_id"] for p in params}
        if mine := [p for p in params if p["b_id"] in held]:
            connection.execute(statement, mine)
        left = exists().where(TABLE.c.batch_id == claim.batch, TABLE.c.status == QUEUED)
        connection.execute(update(BATCHES).where(BATCHES.c.id == claim.batch, ~left).values(done=True,
                                                                                            lease_until=None))
    return held


def renew(engine: Engine, claim: Claim, lease: timedelta, *, clock: Clock = SYSTEM) -> bool:
    """Extend the claim's lease to now + ``lease``; False when it holds the batch no more (taken back, or done)."""
    moment = clock.now()
    with session_scope(engine) as session:
        result = session.connection().execute(update(BATCHES).where(
            BATCHES.c.id == claim.batch, BATCHES.c.lease_key == claim.lease_key, OPEN)
            .values(lease_until=moment + lease))
    return int(result.rowcount) > 0


def release(engine: Engine, claim: Claim, *, unsent: bool = False) -> None:
    """Give a batch back. It keeps its key, so it is retried as the same batch (it may have reached the
    service); with ``unsent`` (the service surely took nothing) it becomes fresh again, under a new key."""
    values: dict[str, Any] = {"lease_until": None, "lease_key": None}
    if unsent:
        values |= {"key": uuid.uuid4().hex, "fresh": True}
    with session_scope(engine) as session:
        session.connection().execute(update(BATCHES).where(
            BATCHES.c.id == claim.batch, BATCHES.c.lease_key == claim.lease_key, OPEN).values(**values))


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
    """Clear leases that ran out on open batches (their sender died); returns how many queued deliveries they hold.

    The batch key stays, so the batch is still claimed again whole and an idempotent provider sees the same
    request. Claims would take these over anyway; clearing them keeps the queue's state honest for operators.
    """
    expired = OPEN & (BATCHES.c.lease_until < clock.now())
    with session_scope(engine) as session:
        connection = session.connection()
        held = int(connection.execute(select(func.count()).select_from(TABLE).where(
            TABLE.c.batch_id.in_(select(BATCHES.c.id).where(expired)), TABLE.c.status == QUEUED)).scalar_one())
        connection.execute(update(BATCHES).where(expired).values(lease_until=None))
    return held
