"""Local delivery: each reader gets an issue at the next local send time in their own zone.

When an issue starts sending, every delivery gets a **due time** (``delivery.due_at``); claims take only
deliveries that are due. With ``NEWSLETTER_DELIVERY_MODE=now`` the due time is the start itself; with ``local``
it is the next ``NEWSLETTER_LOCAL_SEND_TIME`` in the reader's zone after the start (a reader without a zone is in
the publication's). Deliveries due together form a **wave**: the waves of an issue are its queued rows grouped
by due time, so nothing else is stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select
from sqlalchemy.engine import Engine

from newsletter.db import session_scope
from newsletter.models import DeliveryRow, IssueRow
from newsletter.statuses import DeliveryStatus
from newsletter.zones import LocalTime

TABLE: Any = DeliveryRow.__table__  # type: ignore[attr-defined]
ISSUES: Any = IssueRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Wave:
    """Deliveries of one issue due at one time: how many, how many still queued, and the zones it is morning in."""

    at: datetime
    readers: int
    queued: int
    zones: int = 0

    @property
    def gone(self) -> bool:
        """Nothing of the wave is left to send."""
        return self.queued == 0


def waves(engine: Engine, number: int) -> list[Wave]:
    """Issue ``number``'s deliveries grouped by due time, earliest first (one grouped query over the claim index).

    Rows never given a due time (the issue has not started) are left out.
    """
    queued = func.sum(case((TABLE.c.status == DeliveryStatus.QUEUED, 1), else_=0))
    issue_id = select(ISSUES.c.id).where(ISSUES.c.number == number).scalar_subquery()
    query = (select(TABLE.c.due_at, func.count(), queued).where(TABLE.c.issue_id == issue_id,
                                                               TABLE.c.due_at.is_not(None))
             .group_by(TABLE.c.due_at).order_by(TABLE.c.due_at))
    with session_scope(engine) as session:
        rows = session.connection().execute(query).all()
    return [Wave(_aware(at), int(n), int(q or 0)) for at, n, q in rows]


def with_zones(found: Sequence[Wave], zones: Iterable[str | None], local: LocalTime | None) -> list[Wave]:
    """``found`` with each wave's count of the readers' zones (``zones``) whose local send time it is."""
    if local is None:
        return list(found)
    names = list(dict.fromkeys(zones))
    return [Wave(w.at, w.readers, w.queued, sum(local.is_wave_of(z, w.at) for z in names)) for w in found]


def state(wave: Wave, now: datetime) -> str:
    """What became of a wave by ``now``: ``gone`` (nothing left), ``sending`` (due, some left) or ``ahead``."""
    return "gone" if wave.gone else "sending" if wave.at <= now else "ahead"


def describe(wave: Wave, *, zone: ZoneInfo, now: datetime, local: bool) -> str:
    """One line for a wave: its time in ``zone``, zones (with local delivery), readers, what is left."""
    at = wave.at.astimezone(zone).strftime("%a %d %b %H:%M %Z")
    zones = f"{wave.zones} zone{'s' * (wave.zones != 1)}, " if local else ""
    left = f", {wave.queued} left" if wave.queued and not wave.gone else ""
    return f"{at}: {zones}{wave.readers} reader{'s' * (wave.readers != 1)}, {state(wave, now)}{left}"


def _aware(moment: datetime) -> datetime:
    """A stored time as aware UTC (SQLite and ``timestamp without time zone`` give it back naive)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
