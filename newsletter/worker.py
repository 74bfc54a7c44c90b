"""``newsletter worker``: send whatever issue is being sent, from any number of processes and machines.

The database is the only coordinator: workers claim batches with leases (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL), so they never take the same batch, and a dead worker's batch returns to the queue when its lease
expires. SIGTERM lets the batches in flight finish and be recorded before the worker exits.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from newsletter import issues, metrics, outage
from newsletter.clock import SYSTEM, Clock
from newsletter.db import session_scope
from newsletter.dispatch import Sending, SendReport, send_issue
from newsletter.errors import IssueError, ProviderAuthError, ProviderUnavailable
from newsletter.models import DeliveryRow, IssueRow
from newsletter.providers.base import Provider
from newsletter.recipients import RecipientSource
from newsletter.statuses import DeliveryStatus, IssueStatus
from newsletter.zones import LocalTime

log = logging.getLogger("newsletter.worker")


def issues_to_send(engine: Engine, *, clock: Clock = SYSTEM) -> list[int]:
    """Numbers of issues being sent that have queued deliveries due by ``clock``, oldest first (an issue whose
    next wave is hours away is not worth a send yet)."""
    query = (select(IssueRow.number).join(DeliveryRow, col(DeliveryRow.issue_id) == col(IssueRow.id))
             .where(IssueRow.status == IssueStatus.SENDING, DeliveryRow.status == DeliveryStatus.QUEUED,
                    col(DeliveryRow.due_at) <= clock.now())
             .distinct().order_by(col(IssueRow.number)))
    with session_scope(engine) as session:
        return list(session.exec(query))


def hand_to_workers(engine: Engine, number: int, *, recipients: RecipientSource, local: LocalTime | None = None,
                    clock: Clock = SYSTEM, size: int = 100) -> int:
    """Mark the issue ``sending`` and queue its deliveries, each with its due time and its batch of up to ``size``
    (the workers' batch size; see ``start_sending``); workers do the rest. Returns how many are queued."""
    with session_scope(engine) as session:
        issue = issues.get_issue(session, number)
        issues.start_sending(session, issue, recipients, local=local, now=clock.now(), size=size)
        return issues.delivery_counts(session, issue.id).get(DeliveryStatus.QUEUED, 0)


def run(engine: Engine, *, provider: Callable[[], Provider], sending: Sending, stop: threading.Event, poll: float,
        retry_cap: float = 30.0, clock: Clock = SYSTEM) -> int:
    """Send what is due (by ``clock``) until ``stop`` is set; returns how many messages this worker submitted.

    A database outage is waited out with backoff up to ``retry_cap`` seconds, logged once when it starts
    and once when it ends; the round it cut short is run again, which resumes the send where it stopped.
    """
    watch = outage.watch_for(engine.url.render_as_string(hide_password=False), cap=retry_cap)
    submitted = [0]  # counted per batch, so that a round an outage cut short still counts what it sent
    while not stop.is_set():
        outage.ride_out(lambda: _round(engine, submitted, provider=provider, sending=sending, stop=stop, poll=poll,
                                       clock=clock), watch=watch, stop=stop)
    return submitted[0]


def _round(engine: Engine, submitted: list[int], *, provider: Callable[[], Provider], sending: Sending,
           stop: threading.Event, poll: float, clock: Clock = SYSTEM) -> None:
    """Send each issue being sent once through, or wait ``poll`` seconds when there is none."""
    metrics.heartbeat()
    numbers = issues_to_send(engine, clock=clock)
    for number in numbers:
        if stop.is_set():
            break
        seen = 0

        def count(report: SendReport) -> None:
            nonlocal seen
            submitted[0] += report.submitted - seen
            seen = report.submitted
            metrics.heartbeat()

        try:
            send_issue(engine, number, provider=provider(), sending=sending, stop=stop, top_up=False, progress=count,
                       clock=clock)
        except ProviderAuthError as exc:
            log.error("issue %s paused: %s", number, exc)
        except (ProviderUnavailable, IssueError) as exc:
            log.warning("issue %s: %s; trying again later", number, exc)
            stop.wait(poll)
    if not numbers:
        stop.wait(poll)
