"""Local send times: the next 07:00 in a reader's zone, across half- and quarter-hour offsets and DST changes."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from newsletter.zones import LocalTime, known_zone, parse_time, zone_names

SEVEN = LocalTime(time(7, 0), "Europe/Berlin")
START = datetime(2026, 10, 31, 17, 30, tzinfo=UTC)  # a Saturday; the US clocks go back on Sunday at 02:00


@pytest.mark.parametrize(("zone", "due"), [
    ("Pacific/Auckland", datetime(2026, 10, 31, 18, 0, tzinfo=UTC)),  # NZDT, UTC+13: in half an hour
    ("America/Los_Angeles", datetime(2026, 11, 1, 15, 0, tzinfo=UTC)),  # PST by then, not PDT: 15:00, not 14:00
    ("America/New_York", datetime(2026, 11, 1, 12, 0, tzinfo=UTC)),
    ("Asia/Kolkata", datetime(2026, 11, 1, 1, 30, tzinfo=UTC)),  # UTC+5:30
    ("Asia/Kathmandu", datetime(2026, 11, 1, 1, 15, tzinfo=UTC)),  # UTC+5:45
    (None, datetime(2026, 11, 1, 6, 0, tzinfo=UTC)),  # the publication's zone, CET since 25 October
])
def test_the_due_time_is_the_next_seven_in_the_readers_zone(zone: str | None, due: datetime) -> None:
    assert SEVEN.due(zone, START) == due
    assert SEVEN.is_wave_of(zone, due)


def test_a_start_at_the_very_minute_sends_at_once_and_a_minute_late_waits_a_day() -> None:
    seven = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)  # 07:00 in Berlin
    assert SEVEN.due(None, seven) == seven
    assert SEVEN.due(None, seven + timedelta(minutes=1)) == seven + timedelta(days=1)


def test_a_zone_nobody_knows_falls_back_to_the_publications() -> None:
    assert SEVEN.due("Mars/Olympus_Mons", START) == SEVEN.due(None, START)


def test_a_wave_is_never_more_than_a_day_and_an_hour_away_in_any_zone() -> None:
    starts = [datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=7 * i + 0.25 * i) for i in range(0, 1300, 13)]
    for zone in sorted(zone_names())[::7]:
        for start in starts:
            due = SEVEN.due(zone, start)
            assert start <= due <= start + timedelta(hours=25), (zone, start, due)


def test_unknown_names_and_times_are_refused_saying_what_to_give() -> None:
    assert known_zone(" Asia/Kathmandu ") == "Asia/Kathmandu"
    with pytest.raises(ValueError, match="'Europe/Atlantis' is not an IANA time zone name such as Europe/Berlin"):
        known_zone("Europe/Atlantis")
    assert parse_time("7:05") == time(7, 5)
    with pytest.raises(ValueError, match="'seven' is not a time of day as HH:MM"):
        parse_time("seven")
