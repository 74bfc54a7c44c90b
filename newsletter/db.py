"""Engine and session helpers: SQLite by default, PostgreSQL by URL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, make_url
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

from newsletter import sqlite_writers


def normalise_url(url: str) -> str:
    """Route plain ``postgresql://`` URLs to the psycopg 3 driver."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def make_engine(url: str, *, busy_timeout: float = 30.0, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite gets foreign keys, WAL, a busy timeout so writers wait, not fail, and its
    writers queued in the process (:mod:`newsletter.sqlite_writers`) rather than in SQLite's sleeping busy handler;
    a SQLite writer gives up with 'database is locked' after ``busy_timeout`` seconds."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        gate = sqlite_writers.WriterGate(timeout=busy_timeout, database=sqlite_file(url))
        connect_args = {"check_same_thread": False, "timeout": busy_timeout,
                        "factory": sqlite_writers.connection_factory(gate)}
        engine = create_engine(url, connect_args=connect_args, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        sqlite_writers.install(engine, gate)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def sqlite_file(url: str) -> str | None:
    """The file a SQLite URL names, or None for an in-memory database."""
    database = make_url(url).database
    return None if not database or database == ":memory:" or database.startswith("file:") else database


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits when the block succeeds and rolls back when it raises."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # 512 KB of page cache per connection instead of SQLite's 2 MB: the operating system caches the file anyway,
    # and a sender's claims and records walk a few index pages per batch. Measured at 100,000 readers: peak RSS
    # 101 → 93 MB, send rate the same within the run's noise (3,003 and 2,455/s before, 2,901 and 2,874/s after).
    cursor.execute("PRAGMA cache_size=-512")
    cursor.close()
