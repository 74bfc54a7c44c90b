"""Worker heartbeats: each ``newsletter worker`` writes when it was last alive, so an operator (``newsletter doctor``)
can tell a stuck or dead worker from an idle one.

A thread beats every ``NEWSLETTER_HEARTBEAT_SECONDS``, apart from the send loop, so a long batch does not look like
a dead worker. A beat that fails (the database is away) is logged and tried again at the next beat: the worker's
own outage handling decides whether it keeps running.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col, select

from newsletter.clock import SYSTEM, Clock
from newsletter.db import session_scope
from newsletter.models import WorkerHeartbeatRow

log = logging.getLogger("newsletter.heartbeat")
KEEP = timedelta(days=1)  # rows of workers gone longer than this are pruned: a restart is a new row
TABLE = WorkerHeartbeatRow.__table__  # type: ignore[attr-defined]


def worker_name() -> str:
    """This process's name in the heartbeat table: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def beat(engine: Engine, worker: str, *, started: datetime, now: datetime) -> None:
    """Record that ``worker`` is alive at ``now``; prunes workers silent for a day."""
    with engine.begin() as connection:
        found = connection.execute(update(TABLE).where(TABLE.c.worker == worker).values(seen_at=now))
        if found.rowcount == 0:
            connection.execute(TABLE.insert().values(worker=worker, started_at=started, seen_at=now))
        connection.execute(delete(TABLE).where(TABLE.c.seen_at < now - KEEP))


def seen_since(engine: Engine, since: datetime) -> list[WorkerHeartbeatRow]:
    """Workers whose last beat is at or after ``since``, most recent first."""
    query = select(WorkerHeartbeatRow).where(col(WorkerHeartbeatRow.seen_at) >= since)
    with session_scope(engine) as session:
        return list(session.exec(query.order_by(col(WorkerHeartbeatRow.seen_at).desc())))


def last_seen(engine: Engine) -> datetime | None:
    """When any worker last beat; None when none ever did (or all were pruned)."""
    query = select(WorkerHeartbeatRow.seen_at).order_by(col(WorkerHeartbeatRow.seen_at).desc()).limit(1)
    with session_scope(engine) as session:
        return session.exec(query).first()


@contextmanager
def beating(engine: Engine, *, every: float, worker: str | None = None, clock: Clock = SYSTEM) -> Iterator[str]:
    """Beat at once and then every ``every`` seconds in a thread until the block ends; yields the worker's name."""
    name = worker or worker_name()
    started = clock.now()
    stop = threading.Event()

    def loop() -> None:
        while True:
            try:
                beat(engine, name, started=started, now=clock.now())
            except SQLAlchemyError as exc:
                log.warning("heartbeat not written (%s); trying again in %.0f s", type(exc).__name__, every)
            if stop.wait(every):
                return

    thread = threading.Thread(target=loop, name="heartbeat", daemon=True)
    thread.start()
    try:
        yield name
    finally:
        stop.set()
        thread.join(timeout=every + 5)
