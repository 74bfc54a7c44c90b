"""The one loop that claims deliveries, personalises, calls a provider and records results.

Each batch: claim (a lease, in one atomic UPDATE … RETURNING; ``FOR UPDATE SKIP LOCKED`` on PostgreSQL so
workers never wait on each other) → personalise (string fill) → ``provider.send_messages`` → record every
result and release the claim in one commit. Kill the process anywhere: unsent deliveries stay queued, a
claimed batch's lease expires, and the next run finishes the job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, func, update
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from newsletter import issues
from newsletter.db import session_scope
from newsletter.delivery.base import Provider
from newsletter.errors import ProviderAuthError, ProviderUnavailable
from newsletter.models import DeliveryRow
from newsletter.recipients import RecipientSource
from newsletter.render import PreparedEmail
from newsletter.values import Message, Recipient, SendResult

DEFAULT_LEASE = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class Envelope:
    """Who sends, and where the web version lives."""

    sender: str
    publication: str
    domain: str
    public_url: str

    def web_url(self, number: int) -> str:
        """The issue's web version, free of personal links."""
        return f"{self.public_url.rstrip('/')}/archive/{number}"


@dataclass
class SendReport:
    """Running totals of one send."""

    issue: int
    submitted: int = 0
    rejected: int = 0
    dropped: int = 0
    batches: int = 0
    status: str = "sending"
    reasons: dict[str, int] = field(default_factory=dict)


Progress = Callable[[SendReport], None]


def personalise(prepared: PreparedEmail, recipient: Recipient, *, delivery_id: int, issue_number: int,
                envelope: Envelope) -> Message:
    """One recipient's message: slots filled, unsubscribe headers set (RFC 2369 and RFC 8058)."""
    values = {"unsubscribe_url": recipient.unsubscribe_url, "preferences_url": recipient.preferences_url,
              "web_url": envelope.web_url(issue_number)}
    headers = (
        ("List-Unsubscribe", f"<{recipient.unsubscribe_url}>, <{recipient.unsubscribe_mailto}>"),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ("List-Id", f"{envelope.publication} <weekly.{envelope.domain}>"),
        ("X-Newsletter-Issue", str(issue_number)),
        ("X-Newsletter-Delivery", str(delivery_id)),
    )
    return Message(delivery_id, envelope.sender, recipient.address, prepared.rendered.subject,
                   prepared.html.fill(values), prepared.text.fill(values), headers, prepared.template,
                   tuple(values.items()))


def send_issue(engine: Engine, number: int, *, provider: Provider, source: RecipientSource, envelope: Envelope,
               batch_size: int = 100, lease: timedelta = DEFAULT_LEASE, progress: Progress | None = None) -> SendReport:
    """Send issue ``number`` to every queued delivery; resumable, and safe to run in several processes.

    ProviderUnavailable releases the batch and propagates (run again later); ProviderAuthError pauses the
    issue and propagates. The issue becomes ``sent`` when no delivery is left queued.
    """
    with session_scope(engine) as session:
        issue = issues.get_issue(session, number)
        if issue.status != "sending":
            issues.transition(issue, "sending")
        issues.queue_deliveries(session, issue, source)
        prepared = {key: PreparedEmail.of(r) for key, r in issues.snapshots(session, issue).items()}
        issue_id = issue.id
    report = SendReport(number)
    with provider:
        while claimed := _claim(engine, issue_id, batch_size, lease):
            _send_batch(engine, claimed, prepared, provider, source, envelope, report, number, issue_id)
            report.batches += 1
            if progress:
                progress(report)
    report.status = _finish(engine, number)
    return report


def _send_batch(engine: Engine, claimed: list[tuple[int, int, str]], prepared: dict[str, PreparedEmail],
                provider: Provider, source: RecipientSource, envelope: Envelope, report: SendReport,
                number: int, issue_id: int | None) -> None:
    recipients = source.recipients([subscriber for _, subscriber, _ in claimed])
    messages = [personalise(prepared[cohort], recipients[subscriber], delivery_id=delivery, issue_number=number,
                            envelope=envelope)
                for delivery, subscriber, cohort in claimed if subscriber in recipients]
    dropped = [delivery for delivery, subscriber, _ in claimed if subscriber not in recipients]
    try:
        results = provider.send_messages(messages) if messages else []
    except ProviderAuthError as exc:
        _release(engine, [d for d, _, _ in claimed])
        _pause(engine, number, str(exc))
        raise
    except ProviderUnavailable:
        _release(engine, [d for d, _, _ in claimed])
        raise
    _record(engine, results, dropped)
    for result in results:
        if result.status == "submitted":
            report.submitted += 1
        else:
            report.rejected += 1
            key = result.reason or "unknown"
            report.reasons[key] = report.reasons.get(key, 0) + 1
    report.dropped += len(dropped)


def _claim(engine: Engine, issue_id: int | None, size: int, lease: timedelta) -> list[tuple[int, int, str]]:
    """Lease up to ``size`` queued deliveries whose lease is free or expired: (delivery, subscriber, cohort)."""
    now = datetime.now(UTC)
    free = select(DeliveryRow.id).where(
        DeliveryRow.issue_id == issue_id, DeliveryRow.status == "queued",
        (col(DeliveryRow.lease_until).is_(None)) | (col(DeliveryRow.lease_until) < now),
    ).order_by(col(DeliveryRow.id)).limit(size)
    if engine.dialect.name == "postgresql":
        free = free.with_for_update(skip_locked=True)
    table = DeliveryRow.__table__  # type: ignore[attr-defined]
    claim = (update(table).where(table.c.id.in_(free.scalar_subquery()))
             .values(lease_until=now + lease, attempts=table.c.attempts + 1)
             .returning(table.c.id, table.c.subscriber_id, table.c.cohort_key))
    with engine.begin() as connection:
        rows = connection.execute(claim).all()
    return sorted((row[0], row[1], row[2]) for row in rows)


def _record(engine: Engine, results: list[SendResult], dropped: list[int]) -> None:
    """Write every result and clear the leases in one transaction."""
    table = DeliveryRow.__table__  # type: ignore[attr-defined]
    now = datetime.now(UTC)
    statement = (update(table).where(table.c.id == bindparam("b_id"))
                 .values(status=bindparam("b_status"), provider_id=bindparam("b_pid"), reason=bindparam("b_reason"),
                         submitted_at=bindparam("b_at"), lease_until=None))
    params = [{"b_id": r.delivery_id, "b_status": r.status, "b_pid": r.provider_id, "b_reason": r.reason,
               "b_at": now if r.status == "submitted" else None} for r in results]
    params += [{"b_id": d, "b_status": "dropped", "b_pid": None, "b_reason": "subscriber no longer active",
                "b_at": None} for d in dropped]
    if params:
        with engine.begin() as connection:
            connection.execute(statement, params)


def _release(engine: Engine, ids: list[int]) -> None:
    table = DeliveryRow.__table__  # type: ignore[attr-defined]
    with engine.begin() as connection:
        connection.execute(update(table).where(table.c.id.in_(ids)).values(lease_until=None))


def _pause(engine: Engine, number: int, error: str) -> None:
    with session_scope(engine) as session:
        issues.transition(issues.get_issue(session, number), "paused", error=error)


def _finish(engine: Engine, number: int) -> str:
    """Mark the issue sent once nothing is left queued; returns its status."""
    with session_scope(engine) as session:
        issue = issues.get_issue(session, number)
        left = session.exec(select(func.count()).select_from(DeliveryRow).where(
            DeliveryRow.issue_id == issue.id, DeliveryRow.status == "queued")).one()
        if left == 0 and issue.status == "sending":
            issues.transition(issue, "sent")
        return issue.status


