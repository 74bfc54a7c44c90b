"""The one clock: the system clock is aware UTC; a manual clock moves only when told and never goes back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from newsletter.clock import SYSTEM, Clock, ManualClock


def test_the_system_clock_reads_aware_utc() -> None:
    clock: Clock = SYSTEM
    assert clock.now().tzinfo is UTC
    assert clock.monotonic() <= clock.monotonic()


def test_a_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock(datetime(2026, 12, 1, 7, 0, tzinfo=UTC))
    assert clock.now() == clock.now() == datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
    clock.sleep(90)
    assert clock.now() == datetime(2026, 12, 1, 7, 1, 30, tzinfo=UTC)
    assert clock.monotonic() == 90
    clock.set(datetime(2026, 12, 2, tzinfo=UTC))
    assert clock.monotonic() == 17 * 3600  # from 07:00 to midnight


def test_a_manual_clock_refuses_to_go_back() -> None:
    clock = ManualClock()
    with pytest.raises(ValueError, match="does not go back"):
        clock.advance(timedelta(seconds=-1))
