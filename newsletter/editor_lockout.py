"""Failed sign-ins counted per name in the database, so that rotating addresses or workers gains nothing.

After :attr:`Policy.free` failures under one name, sign-ins under it pause: one minute, then twice as long
after each further failure, up to :attr:`Policy.longest`. Attempts while paused are refused unchecked and not
counted, so nobody can stretch a pause. The count is forgotten an hour after the last failure and on a
successful sign-in. Unknown names are counted exactly like editors' names: the answers never tell them apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import col, delete

from newsletter.db import session_scope
from newsletter.models import EditorLoginFailureRow

_TABLE = EditorLoginFailureRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Policy:
    """How many failures are free, how the pause grows, and when the count is forgotten."""

    free: int = 5
    first: timedelta = timedelta(minutes=1)
    longest: timedelta = timedelta(minutes=15)
    forget_after: timedelta = timedelta(hours=1)  # longer than the longest pause, so no pause is forgotten early

    def pause_after(self, failures: int) -> timedelta | None:
        """How long sign-ins pause after the ``failures``-th failure in a row; None while it is free."""
        if failures < self.free:
            return None
        return min(self.first * (1 << min(failures - self.free, 30)), self.longest)


def paused_until(engine: Engine, name: str, *, now: datetime) -> datetime | None:
    """Until when sign-ins under ``name`` are refused; None when they may be tried now."""
    with session_scope(engine) as session:
        row = session.get(EditorLoginFailureRow, name)
        return row.locked_until if row is not None and row.locked_until and row.locked_until > now else None


def record_failure(engine: Engine, name: str, *, now: datetime, policy: Policy) -> datetime | None:
    """Count a failed sign-in under ``name``; until when sign-ins now pause, or None."""
    with session_scope(engine) as session:
        connection = session.connection()
        dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
        connection.execute(dialect.insert(_TABLE).values(name=name, failures=0, last_failure_at=now)
                           .on_conflict_do_nothing())
        # One statement counts, so two workers failing at once both count (no read-then-write race).
        stale = _TABLE.c.last_failure_at < now - policy.forget_after
        failures = connection.execute(
            update(_TABLE).where(_TABLE.c.name == name)
            .values(failures=case((stale, 1), else_=_TABLE.c.failures + 1), last_failure_at=now)
            .returning(_TABLE.c.failures)).scalar_one()
        pause = policy.pause_after(failures)
        until = now + pause if pause else None
        connection.execute(update(_TABLE).where(_TABLE.c.name == name).values(locked_until=until))
        forgotten = col(EditorLoginFailureRow.last_failure_at) < now - policy.forget_after
        session.exec(delete(EditorLoginFailureRow).where(forgotten))  # names tried once, long ago, go
        return until


def forget_failures(engine: Engine, name: str) -> None:
    """Clear the count for ``name`` after a successful sign-in."""
    with session_scope(engine) as session:
        session.exec(delete(EditorLoginFailureRow).where(col(EditorLoginFailureRow.name) == name))
