"""Database outages: tell one from a bug, wait it out with capped backoff, and say so once, not per retry.

Long-running processes (workers, the scheduler) ride an outage out: every step of a send is resumable, so
trying the whole step again once the database is back loses and doubles nothing. One-shot commands turn it
into :class:`DatabaseUnavailable`, a one-line error that names the database (its URL without the password).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.pool import NullPool

from newsletter.db import make_engine, normalise_url
from newsletter.errors import DatabaseUnavailable

log = logging.getLogger("newsletter.database")
T = TypeVar("T")
FIRST_WAIT = 0.5
DEFAULT_CAP = 30.0
RECORD_CAP = 1.0  # a batch's results wait in memory: try often, the lease is running
# SQLite says these when its file is locked by another writer or cannot be opened; its other
# OperationalErrors (no such table, syntax) are bugs, not outages.
SQLITE_OUTAGES = ("locked", "busy", "unable to open", "disk i/o error")


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` means the database is down, unreachable or locked (worth waiting for), not a bug."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError | InterfaceError):
        return False
    if type(exc.orig).__module__.startswith("sqlite3"):
        return any(marker in str(exc.orig).lower() for marker in SQLITE_OUTAGES)
    # PostgreSQL's class 40 (deadlock, serialization failure) is an OperationalError too, but the server is up.
    return not str(getattr(exc.orig, "sqlstate", None) or "").startswith("40")


def describe(url: str) -> str:
    """``url`` without its password, fit for logs and error messages."""
    try:
        parsed = make_url(url)
        return parsed._replace(password=None, drivername=parsed.get_backend_name()).render_as_string(
            hide_password=False)
    except ArgumentError:
        return "the configured database"


def reason(exc: BaseException) -> str:
    """The driver's own words, first line only (psycopg adds hints on further lines)."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = str(cause).strip().splitlines()
    return lines[0].strip() if lines else type(cause).__name__


@contextmanager
def reported(url: str, *, advice: str = "run the command again once it is back") -> Iterator[None]:
    """Turn an outage raised inside the block into :class:`DatabaseUnavailable` naming the database."""
    try:
        yield
    except DBAPIError as exc:  # OperationalError and InterfaceError among them
        if not is_outage(exc):
            raise
        raise DatabaseUnavailable(f"the database {describe(url)} is unavailable ({reason(exc)}); "
                                  f"nothing committed is lost: {advice}") from None


class Backoff:
    """Waits between attempts: 0.5 s, doubling up to ``cap`` seconds; ``reset()`` after a success."""

    def __init__(self, cap: float) -> None:
        self.cap = cap
        self._next = min(FIRST_WAIT, cap)

    def next(self) -> float:
        """The wait before the next attempt."""
        wait = self._next
        self._next = min(self._next * 2, self.cap)
        return wait

    def reset(self) -> None:
        """Start from the shortest wait again."""
        self._next = min(FIRST_WAIT, self.cap)


class Watch:
    """One database's state as a process sees it: logs one line when it goes away and one when it is back."""

    def __init__(self, url: str, *, cap: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.url, self.name, self.cap, self.clock = url, describe(url), cap, clock
        self._since: float | None = None
        self._lock = threading.Lock()

    @property
    def down_now(self) -> bool:
        """Whether the last attempt found the database unavailable."""
        return self._since is not None

    def down(self, exc: BaseException) -> None:
        """An attempt failed with an outage; only the first failure of an outage is logged."""
        with self._lock:
            if self._since is not None:
                return
            self._since = self.clock()
        log.warning("database %s is unavailable (%s); retrying with backoff up to %gs, nothing is lost",
                    self.name, reason(exc), self.cap)

    def reachable(self) -> bool:
        """Whether the database takes a connection now (and, for SQLite, a write lock), on a fresh connection."""
        probe = make_engine(self.url, poolclass=NullPool)
        try:
            with probe.connect() as connection:
                sqlite = probe.dialect.name == "sqlite"
                connection.exec_driver_sql("BEGIN IMMEDIATE" if sqlite else "SELECT 1")
                connection.rollback()
            return True
        except DBAPIError as exc:
            if is_outage(exc):
                return False
            raise
        finally:
            probe.dispose()

    def up(self) -> None:
        """An attempt succeeded; logged when it ends an outage."""
        with self._lock:
            since, self._since = self._since, None
        if since is not None:
            log.info("database %s is back after %.1fs; carrying on", self.name, self.clock() - since)


_watches: dict[str, Watch] = {}
_watches_lock = threading.Lock()


def watch_for(url: str, *, cap: float | None = None) -> Watch:
    """This process's one watch on ``url`` (its backoff capped at ``cap``, default 30 s, when given), so that
    its job store, its jobs and its sends log one outage once."""
    key = make_url(normalise_url(url)).render_as_string(hide_password=False)  # settings' and engines' alike
    with _watches_lock:
        watch = _watches.get(key)
        if watch is None or (cap is not None and watch.cap != cap):
            watch = _watches[key] = Watch(url, cap=DEFAULT_CAP if cap is None else cap)
        return watch


def persist(write: Callable[[], T], *, url: str, within: float) -> T:
    """Run a write that must not be lost through an outage shorter than ``within`` seconds, else re-raise.

    A batch's results are such a write: the provider has taken the batch, and unrecorded it would be claimed
    again when its lease expires and go out twice. Past ``within`` (what is left of the lease) another sender
    may have claimed it, so the outage is raised as usual.
    """
    deadline = time.monotonic() + within
    backoff = Backoff(RECORD_CAP)
    while True:
        try:
            written = write()
        except DBAPIError as exc:
            wait = backoff.next()
            if not is_outage(exc) or time.monotonic() + wait > deadline:
                raise
            watch_for(url).down(exc)
            time.sleep(wait)
            continue
        watch_for(url).up()
        return written


def ride_out(action: Callable[[], T], *, watch: Watch, stop: threading.Event) -> T | None:
    """Run ``action`` until it gets through an outage; None when ``stop`` is set while waiting.

    ``action`` must be safe to run again from the start: every step of a send is (issue built once,
    deliveries claimed under leases, results committed per batch).
    """
    backoff = Backoff(watch.cap)
    while True:
        try:
            result = action()
        except DBAPIError as exc:  # OperationalError and InterfaceError among them
            if not is_outage(exc):
                raise
            if watch.down_now or not watch.reachable():
                watch.down(exc)
                if not _wait_until_back(watch, backoff, stop):
                    return None
            elif stop.wait(backoff.next()):  # it failed in an outage that is over already: no new line
                return None
            continue
        watch.up()
        return result


def _wait_until_back(watch: Watch, backoff: Backoff, stop: threading.Event) -> bool:
    """Probe with growing waits until the database answers (said at once, not when the action is done)."""
    while not stop.wait(backoff.next()):
        if watch.reachable():
            watch.up()
            backoff.reset()
            return True
    return False
