"""Housekeeping the scheduler runs every few minutes: expired leases, failed deliveries worth another try.

(Purging stale sign-ups is the recipient source's job: ``RecipientSource.purge_pending``.)
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from newsletter import claims, issues
from newsletter.claims import TABLE
from newsletter.db import session_scope
from newsletter.models import IssueRow


def release_expired_leases(engine: Engine, *, now: datetime | None = None) -> int:
    """Clear leases that ran out on queued deliveries (their sender died); returns how many.

    The batch key stays, so the batch is still claimed again whole and an idempotent provider sees the same
    request. Claims would take these over anyway; clearing them keeps the queue's state honest for operators.
    """
    moment = now or datetime.now(UTC)
    with engine.begin() as connection:
        result = connection.execute(update(TABLE).where(TABLE.c.status == "queued", TABLE.c.lease_until < moment)
                                    .values(lease_until=None))
    return int(result.rowcount)


def retry_failed(engine: Engine, *, attempts: int) -> int:
    """Queue failed deliveries again when the service surely did not take them and they had fewer than
    ``attempts`` tries; returns how many. Issues that were already ``sent`` go back to ``sending`` for them.

    A failure whose outcome is unknown (a timeout after the request went out) is never retried here: the
    reader may have the email already, and that call belongs to an operator (``issue send --retry-failed``).
    Paused and cancelled issues are left alone.
    """
    which: dict[str, Any] = {"attempts_below": attempts, "unknown_outcome": False}
    with session_scope(engine) as session:
        numbers = session.exec(select(IssueRow.number).join(TABLE, TABLE.c.issue_id == col(IssueRow.id))
                               .where(col(IssueRow.status).in_(("sending", "sent")), claims.failed_where(**which))
                               .distinct()).all()
    return sum(requeue(engine, number, **which)[0] for number in numbers)


def requeue(engine: Engine, number: int, **which: Any) -> tuple[int, bool]:
    """Queue issue ``number``'s failed deliveries again (``which``: see :func:`claims.failed_where`), reopening
    it if it was sent: (how many, whether it was reopened). Its next send must not top up the queue."""
    with session_scope(engine) as session:
        issue = issues.get_issue(session, number)
        issue_id, reopened = issue.id, issue.status == "sent"
        issues.reopen_for_retry(issue)
    assert issue_id is not None
    return claims.requeue_failed(engine, issue_id, **which), reopened
