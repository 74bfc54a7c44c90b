"""One writer at a time per SQLite engine, queued in this process instead of in SQLite's busy handler.

SQLite takes one write transaction at a time. A connection that finds the lock taken waits in SQLite's busy
handler, which polls with sleeps that grow to 100 ms: under a burst of writes from the web app's thread pool
(one-click unsubscribes, votes, webhooks) most of each request was spent asleep while the lock sat free, and the
p99 reached a second. Here the first writing statement of a transaction takes a per-engine lock and the
connection's commit, rollback or close gives it back, so the next writer is woken the moment SQLite's lock is
free. Reads never take it (WAL lets them run beside the writer).

Between processes (uvicorn workers, a ``newsletter worker``, the scheduler) the process's writer also takes an
advisory lock on a file beside the database (``<database>-writers.lock``), so writers of several processes queue
in the kernel, each woken as the other lets go, rather than in SQLite's sleeps. Where that file cannot be made
(a read-only folder, no ``fcntl``), SQLite's own lock still decides.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

try:
    import fcntl
except ImportError:  # not a POSIX system: no lock between processes
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)
# How often a writer looks again while another process writes: short against a write transaction's milliseconds.
POLL = 0.0005

# Statements that never write: anything else (INSERT, UPDATE, DELETE, DDL, a WITH … UPDATE) takes the lock.
READS = ("SELECT", "PRAGMA", "EXPLAIN")


class ProcessLock:
    """The advisory lock on ``path`` that one writer per process holds while it writes (none: a no-op)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._fd: int | None = None
        self._pid = 0

    def acquire(self, deadline: float) -> bool:
        """Take the lock, looking again every :data:`POLL` seconds until ``deadline`` (monotonic); False then."""
        fd = self._descriptor()
        if fd is None:
            return True
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(POLL)

    def release(self) -> None:
        """Let the next process's writer in."""
        if self._fd is not None and self._pid == os.getpid():
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _descriptor(self) -> int | None:
        # Opened once per process: a forked child must not share its parent's open file, and with it the lock.
        if self.path is None or fcntl is None:
            return None
        if self._fd is None or self._pid != os.getpid():
            try:
                self._fd, self._pid = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o660), os.getpid()
            except OSError as exc:
                log.warning("no lock between processes' SQLite writers (%s): SQLite's own lock decides", exc)
                self.path = None
                return None
        return self._fd


class WriterGate:
    """The lock, held by at most one DBAPI connection from its first write until its transaction ends."""

    def __init__(self, timeout: float, *, database: str | None = None) -> None:
        self.timeout = timeout
        self._lock = threading.Lock()
        self._holder: int | None = None  # id() of the DBAPI connection holding the lock
        self._between = ProcessLock(Path(f"{database}-writers.lock") if database else None)

    def enter(self, connection: sqlite3.Connection) -> None:
        """Take the lock for ``connection`` unless it holds it already; after ``timeout`` seconds, sqlite3's own
        'database is locked', as SQLite would have said."""
        if self._holder == id(connection):
            return
        deadline = time.monotonic() + self.timeout
        if not self._lock.acquire(timeout=self.timeout):
            raise sqlite3.OperationalError("database is locked")
        if not self._between.acquire(deadline):
            self._lock.release()
            raise sqlite3.OperationalError("database is locked")
        self._holder = id(connection)

    def leave(self, connection: sqlite3.Connection) -> None:
        """Give the lock back if ``connection`` holds it (a no-op otherwise, so every end may call it)."""
        if self._holder == id(connection):
            self._holder = None
            self._between.release()
            self._lock.release()


def connection_factory(gate: WriterGate) -> type[sqlite3.Connection]:
    """A ``sqlite3.Connection`` class whose commit, rollback and close give ``gate`` back once SQLite's own
    transaction is over (SQLAlchemy's commit events fire before the commit, which would wake the next writer
    into SQLite's busy handler)."""

    class GatedConnection(sqlite3.Connection):
        def commit(self) -> None:
            try:
                super().commit()
            finally:
                if not self.in_transaction:
                    gate.leave(self)

        def rollback(self) -> None:
            try:
                super().rollback()
            finally:
                gate.leave(self)

        def close(self) -> None:
            try:
                super().close()
            finally:
                gate.leave(self)

    return GatedConnection


def install(engine: Engine, gate: WriterGate) -> None:
    """Make ``engine``'s writing statements take ``gate`` (its connections must come from the gate's factory)."""

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.lstrip()[:7].upper().startswith(READS):
            gate.enter(conn.connection.dbapi_connection)

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn: Any, *_args: Any) -> None:
        _settled(gate, conn.connection.dbapi_connection)

    @event.listens_for(engine, "handle_error")
    def _failed(context: Any) -> None:
        # Failed inside a transaction: the rollback that follows gives the lock back. Outside one: now.
        if context.connection is not None:
            _settled(gate, context.connection.connection.dbapi_connection)


def _settled(gate: WriterGate, connection: Any) -> None:
    """After a statement: with no transaction open (autocommit, DDL) there is nothing to hold the lock for."""
    if isinstance(connection, sqlite3.Connection) and not connection.in_transaction:
        gate.leave(connection)
