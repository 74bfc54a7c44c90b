"""Time zones and local send times: which zone names are known, and when a reader's local send time next comes.

Pure: no database. ``newsletter.waves`` groups an issue's deliveries by the due times computed here.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones


def known_zone(name: str) -> str:
    """``name`` when it is an IANA time zone (``Europe/Berlin``); ValueError saying what to give otherwise."""
    cleaned = name.strip()
    if cleaned not in zone_names():
        raise ValueError(f"{name!r} is not an IANA time zone name such as Europe/Berlin or America/Los_Angeles")
    return cleaned


@functools.cache
def zone_names() -> frozenset[str]:
    """Every IANA zone name this machine knows (``zoneinfo.available_timezones``, read once)."""
    return frozenset(available_timezones())


@functools.cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def zone_of(name: str | None, fallback: str) -> ZoneInfo:
    """The reader's zone: ``name``, or ``fallback`` (the publication's) when there is none or it is not known."""
    try:
        return _zone(name) if name else _zone(fallback)
    except (ZoneInfoNotFoundError, ValueError):  # a name stored before it was checked, or dropped from tzdata
        return _zone(fallback)


@dataclass(frozen=True, slots=True)
class LocalTime:
    """Local delivery: every reader at the next ``at`` on their own clock; readers without a zone use ``zone``."""

    at: time
    zone: str

    def due(self, name: str | None, start: datetime) -> datetime:
        """The first ``at`` in zone ``name`` not before ``start``, in UTC: within a day (25 hours when the clocks
        go back in between), so a start at the very minute sends at once."""
        zone = zone_of(name, self.zone)
        local = start.astimezone(zone)
        candidate = _wall(local.date(), self.at, zone)
        if candidate < start:
            candidate = _wall(local.date() + timedelta(days=1), self.at, zone)
        return candidate

    def is_wave_of(self, name: str | None, moment: datetime) -> bool:
        """Whether ``moment`` is the local send time in zone ``name`` (so its readers are in that wave)."""
        local = moment.astimezone(zone_of(name, self.zone))
        return _wall(local.date(), self.at, local.tzinfo) == moment  # type: ignore[arg-type]


def _wall(day: date, at: time, zone: ZoneInfo) -> datetime:
    """``at`` on ``day`` in ``zone`` as a UTC instant; a time skipped by a DST change becomes the instant after
    the gap (the UTC round trip normalises it), a repeated one its first occurrence."""
    naive = datetime.combine(day, at)
    return naive.replace(tzinfo=zone).astimezone(UTC)


def parse_time(value: str) -> time:
    """``HH:MM`` (24-hour) as a time; ValueError saying the form otherwise."""
    try:
        hours, minutes = value.strip().split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        raise ValueError(f"{value!r} is not a time of day as HH:MM, such as 07:00") from None
