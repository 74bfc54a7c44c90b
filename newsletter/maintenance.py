"""Housekeeping the scheduler runs every few minutes: expired leases, unknown outcomes reconciled from the
provider's record, failed deliveries worth another try.

(Purging stale sign-ups is the recipient source's job: ``RecipientSource.purge_pending``.)
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from newsletter import deliveries, issues, reconcile
from newsletter.clock import SYSTEM, Clock
from newsletter.db import session_scope
from newsletter.models import IssueRow
from newsletter.providers.base import Provider
from newsletter.recipients import RecipientSource
from newsletter.statuses import IssueStatus


def release_expired_leases(engine: Engine, *, clock: Clock = SYSTEM) -> int:
    """Clear leases that ran out on queued deliveries (their sender died); returns how many
    (see :func:`newsletter.deliveries.release_expired`)."""
    return deliveries.release_expired(engine, clock=clock)


def reconcile_unknown(engine: Engine, *, provider: Provider, recipients: RecipientSource, hours: float,
                      clock: Clock = SYSTEM) -> list[reconcile.Reconciled]:
    """Settle unknown outcomes of the last ``hours`` from the provider's record (see
    :func:`newsletter.reconcile.reconcile_all`); returns what each issue's reconciliation settled."""
    return reconcile.reconcile_all(engine, provider=provider, recipients=recipients, hours=hours, clock=clock)


def retry_failed(engine: Engine, *, attempts: int) -> int:
    """Queue failed deliveries again when the service surely did not take them and they had fewer than
    ``attempts`` tries; returns how many. Issues that were already ``sent`` go back to ``sending`` for them.

    A failure whose outcome is unknown (a timeout after the request went out) is never retried here: the
    reader may have the email already, and that call belongs to an operator (``issue send --retry-failed``).
    Paused and cancelled issues are left alone.
    """
    which: dict[str, Any] = {"attempts_below": attempts, "unknown_outcome": False}
    live = select(IssueRow.id).where(col(IssueRow.status).in_((IssueStatus.SENDING, IssueStatus.SENT)))
    with session_scope(engine) as session:
        ids = deliveries.issues_with_failed(session, live.scalar_subquery(), **which)
        numbers = session.exec(select(IssueRow.number).where(col(IssueRow.id).in_(ids))).all() if ids else []
    return sum(requeue(engine, number, **which)[0] for number in numbers)


def requeue(engine: Engine, number: int, **which: Any) -> tuple[int, bool]:
    """Queue issue ``number``'s failed deliveries again (``which``: see :func:`newsletter.deliveries.failed_where`),
    reopening it if it was sent: (how many, whether it was reopened). Its next send must not top up the queue."""
    with session_scope(engine) as session:
        issue = issues.get_issue(session, number)
        issue_id, reopened = issue.id, issue.status == IssueStatus.SENT
        issues.reopen_for_retry(issue)
    assert issue_id is not None
    return deliveries.requeue_failed(engine, issue_id, **which), reopened
