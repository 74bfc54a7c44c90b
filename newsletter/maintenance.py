"""Housekeeping the scheduler runs every few minutes: expired leases, failed deliveries worth another try.

(Purging stale sign-ups is the recipient source's job: ``RecipientSource.purge_pending``.)
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from newsletter import issues
from newsletter.claims import TABLE, UNKNOWN_OUTCOME
from newsletter.db import session_scope
from newsletter.models import DeliveryRow, IssueRow


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
    retryable = (col(DeliveryRow.status) == "failed", col(DeliveryRow.attempts) < attempts,
                 ~col(DeliveryRow.reason).startswith(UNKNOWN_OUTCOME))
    with session_scope(engine) as session:
        found = session.exec(select(IssueRow).join(DeliveryRow, col(DeliveryRow.issue_id) == col(IssueRow.id))
                             .where(col(IssueRow.status).in_(("sending", "sent")), *retryable).distinct()).all()
        for issue in found:
            issues.reopen_for_retry(issue)
        ids = [issue.id for issue in found]
    if not ids:
        return 0
    with engine.begin() as connection:
        result = connection.execute(update(TABLE).where(TABLE.c.issue_id.in_(ids), TABLE.c.status == "failed",
                                                        TABLE.c.attempts < attempts,
                                                        ~TABLE.c.reason.startswith(UNKNOWN_OUTCOME))
                                    .values(status="queued", batch_key=None, lease_until=None, reason=None))
    return int(result.rowcount)
