"""``newsletter worker``: send whatever issue is being sent, from any number of processes and machines.

The database is the only coordinator: workers claim batches with leases (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL), so they never take the same batch, and a dead worker's batch returns to the queue when its lease
expires. SIGTERM lets the batches in flight finish and be recorded before the worker exits.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from newsletter import issues
from newsletter.db import session_scope
from newsletter.delivery.base import Provider
from newsletter.dispatch import Envelope, send_issue
from newsletter.errors import IssueError, ProviderAuthError, ProviderUnavailable
from newsletter.models import DeliveryRow, IssueRow
from newsletter.recipients import RecipientSource

log = logging.getLogger("newsletter.worker")


def issues_to_send(engine: Engine) -> list[int]:
    """Numbers of issues being sent that still have queued deliveries, oldest first."""
    query = (select(IssueRow.number).join(DeliveryRow, col(DeliveryRow.issue_id) == col(IssueRow.id))
             .where(IssueRow.status == "sending", DeliveryRow.status == "queued")
             .distinct().order_by(col(IssueRow.number)))
    with Session(engine) as session:
        return list(session.exec(query))


def hand_to_workers(engine: Engine, number: int, *, source: RecipientSource) -> int:
    """Mark the issue ``sending`` and queue its deliveries; workers do the rest. Returns how many are queued."""
    with session_scope(engine) as session:
        issue = issues.get_issue(session, number)
        issues.start_sending(session, issue, source)
        return issues.delivery_counts(session, issue.id).get("queued", 0)


def run(engine: Engine, *, provider: Callable[[], Provider], source: RecipientSource, envelope: Envelope,
        stop: threading.Event, poll: float, **send_options: Any) -> int:
    """Send until ``stop`` is set; returns how many messages this worker submitted."""
    submitted = 0
    while not stop.is_set():
        numbers = issues_to_send(engine)
        for number in numbers:
            if stop.is_set():
                break
            try:
                report = send_issue(engine, number, provider=provider(), source=source, envelope=envelope, stop=stop,
                                    top_up=False, **send_options)
                submitted += report.submitted
            except ProviderAuthError as exc:
                log.error("issue %s paused: %s", number, exc)
            except (ProviderUnavailable, IssueError) as exc:
                log.warning("issue %s: %s; trying again later", number, exc)
                stop.wait(poll)
        if not numbers:
            stop.wait(poll)
    return submitted
