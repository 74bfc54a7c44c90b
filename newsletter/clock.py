"""The one clock: wall time (aware UTC) for leases, token ages, due times and rate limits, and a monotonic reading.

Everything whose behaviour depends on time takes a ``Clock`` instead of calling ``datetime.now`` or
``time.monotonic``, so a test moves time with ``ManualClock.advance`` instead of sleeping or rewriting stored
times. The composition root hands the process one ``SystemClock``.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """What time it is: ``now()`` for stored times and ages, ``monotonic()`` for intervals within the process."""

    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (only differences mean anything)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (a manual clock advances instead)."""
        ...


class SystemClock:
    """The machine's clock."""

    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        return datetime.now(UTC)

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """``time.sleep``."""
        if seconds > 0:
            time.sleep(seconds)


class ManualClock:
    """A clock that moves only when told to (tests): ``sleep`` advances it at once, so nothing really waits."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = (start or datetime(2026, 11, 23, 9, 0, tzinfo=UTC)).astimezone(UTC)
        self._elapsed = 0.0
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The clock's current time."""
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        """Seconds advanced since the clock was made."""
        with self._lock:
            return self._elapsed

    def sleep(self, seconds: float) -> None:
        """Advance by ``seconds`` instead of waiting."""
        self.advance(timedelta(seconds=max(seconds, 0.0)))

    def advance(self, by: timedelta) -> datetime:
        """Move the clock forward by ``by``; returns the new time."""
        if by < timedelta(0):
            raise ValueError("a clock does not go back: advance by a positive amount")
        with self._lock:
            self._now += by
            self._elapsed += by.total_seconds()
            return self._now

    def set(self, moment: datetime) -> None:
        """Jump to ``moment`` (not earlier than now)."""
        self.advance(moment.astimezone(UTC) - self.now())


SYSTEM = SystemClock()
