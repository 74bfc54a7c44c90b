"""Batches: the unit a send claims, fixed before any sender sees its deliveries.

Every queued delivery that has a due time belongs to one batch (``delivery.batch_id``), and the deliveries of a
batch share their due time, so a wave is made of whole batches. A delivery gets its batch when it gets its due
time (:func:`assign`: when sending starts, readers added then included) and a new one when it is queued again
(a failure retried, an unknown outcome the provider has no trace of, a reader who moved to another zone). A
claim then leases the batch row, not its deliveries: during a send each delivery row is written once, with its
result.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Connection

from newsletter.models import DeliveryBatchRow, DeliveryRow
from newsletter.recipients import RecipientSource
from newsletter.statuses import DeliveryStatus
from newsletter.zones import LocalTime

TABLE: Any = DeliveryRow.__table__  # type: ignore[attr-defined]
BATCHES: Any = DeliveryBatchRow.__table__  # type: ignore[attr-defined]
# Deliveries per batch when the caller does not say (SendOptions' default batch size).
DEFAULT_SIZE = 100
QUEUED = DeliveryStatus.QUEUED


def new_batch(connection: Connection, issue_id: int, due: datetime) -> int:
    """A new, fresh, empty batch of the issue due at ``due``, under a new key; returns its id."""
    return int(connection.execute(insert(BATCHES).values(issue_id=issue_id, due_at=due, key=uuid.uuid4().hex,
                                                         fresh=True, claims=0, done=False)
                                  .returning(BATCHES.c.id)).scalar_one())


def assign(connection: Connection, issue_id: int, *, start: datetime, local: LocalTime | None = None,
           source: RecipientSource | None = None, size: int = DEFAULT_SIZE, page_size: int = 1000) -> int:
    """Put every queued delivery of the issue that has no batch into one, giving it a due time if it has none;
    returns how many.

    The due time is ``start``, or with ``local`` (and ``source`` for the readers' zones) the reader's next local
    send time after ``start``; a delivery that has one keeps it (a retry, a resume: no wave moves). Deliveries
    with the same due time fill batches of ``size`` in id order, across pages, so a wave's batches are full.
    Rows are read in pages (keyset by id) and written by primary key in one executemany per page: an
    ``id IN (…)`` per batch would be planned as a scan of the whole table on PostgreSQL, which has no statistics
    yet inside the transaction that queued the rows. The write is guarded by ``batch_id IS NULL``: of two
    senders starting the same send, the second finds the rows batched already and leaves them be.
    """
    unbatched = (TABLE.c.issue_id == issue_id) & (TABLE.c.status == QUEUED) & TABLE.c.batch_id.is_(None)
    filling: dict[datetime, list[int]] = {}  # due time -> [the batch being filled, how many it holds]
    # Rows without a due time first (a send starting: nearly all of them), read as a range of the index over
    # (issue, status, due time, id) in its own order, so that each page stops after its rows (ordered by id
    # alone, PostgreSQL reads and sorts every row left for each page: quadratic at a million readers); then the
    # few that have one (queued again).
    unscheduled = TABLE.c.due_at.is_(None)
    return (_assign_pages(connection, issue_id, unbatched & unscheduled, (TABLE.c.due_at, TABLE.c.id), filling,
                          start=start, local=local, source=source, size=size, page_size=page_size)
            + _assign_pages(connection, issue_id, unbatched & ~unscheduled, (TABLE.c.id,), filling, start=start,
                            local=local, source=source, size=size, page_size=page_size))


def _assign_pages(connection: Connection, issue_id: int, where: Any, order: tuple[Any, ...],
                  filling: dict[datetime, list[int]], *, start: datetime, local: LocalTime | None,
                  source: RecipientSource | None, size: int, page_size: int) -> int:
    """Batch the rows of ``where`` a page at a time, keyset by id (``order`` is id order for these rows);
    returns how many."""
    done, after = 0, 0
    while rows := connection.execute(select(TABLE.c.id, TABLE.c.subscriber_id, TABLE.c.due_at)
                                     .where(where, TABLE.c.id > after).order_by(*order).limit(page_size)).all():
        after = rows[-1][0]
        params = [{"b_id": delivery, "b_due": due, "b_batch": _place(connection, issue_id, filling, due, size)}
                  for (delivery, _, _), due in zip(rows, _dues(rows, start, local, source), strict=True)]
        connection.execute(update(TABLE).where(TABLE.c.id == bindparam("b_id"), TABLE.c.batch_id.is_(None))
                           .values(due_at=bindparam("b_due"), batch_id=bindparam("b_batch")), params)
        done += len(rows)
    return done


def _dues(rows: Sequence[Any], start: datetime, local: LocalTime | None,
          source: RecipientSource | None) -> list[datetime]:
    """Each row's due time: the one it has, else ``start`` or the reader's next local send time (once per zone)."""
    if local is None or source is None:
        return [due or start for _, _, due in rows]
    zones = source.time_zones([subscriber for _, subscriber, due in rows if due is None])
    dues = {zone: local.due(zone, start) for zone in {*zones.values(), None}}
    return [due or dues[zones.get(subscriber)] for _, subscriber, due in rows]


def _place(connection: Connection, issue_id: int, filling: dict[datetime, list[int]], due: datetime,
           size: int) -> int:
    """The batch of due time ``due`` that has room for one more delivery (a new one when it is full)."""
    slot = filling.get(due)
    if slot is None or slot[1] >= size:
        slot = filling[due] = [new_batch(connection, issue_id, due), 0]
    slot[1] += 1
    return slot[0]
