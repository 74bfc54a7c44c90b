"""Issue lifecycle and its status lock (delivery rows are ``deliveries``' to write).

Status: ``draft → approved → sending → sent``, with ``paused`` and ``cancelled`` on the side. One issue per
publication week (unique column), so building twice, or from two processes at once, yields one issue.
Every status change is one UPDATE guarded by the status it was decided on, so of two racing changes
(a desk pause and a send start) the second is refused instead of silently undoing the first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, update
from sqlalchemy.orm import object_session
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from newsletter import deliveries
from newsletter.errors import IssueNotFound, IssueStateError
from newsletter.models import DeliveryRow, IssueCohortRow, IssueRow
from newsletter.recipients import RecipientSource
from newsletter.statuses import IssueStatus
from newsletter.values import Cohort, RenderedEmail, Week
from newsletter.zones import LocalTime

ALL = Cohort().key
S = IssueStatus
EDITABLE = frozenset({S.DRAFT, S.APPROVED})
TRANSITIONS: dict[str, frozenset[IssueStatus]] = {
    S.DRAFT: frozenset({S.APPROVED, S.SENDING, S.CANCELLED}),
    S.APPROVED: frozenset({S.DRAFT, S.SENDING, S.PAUSED, S.CANCELLED}),
    S.SENDING: frozenset({S.SENT, S.PAUSED}),
    S.PAUSED: frozenset({S.SENDING, S.CANCELLED}),
    S.SENT: frozenset(),
    S.CANCELLED: frozenset(),
}


@dataclass(frozen=True, slots=True)
class IssueSummary:
    """An issue and its delivery counts, for lists and reports."""

    number: int
    week: str
    subject: str
    status: str
    created_at: datetime
    cohorts: int
    deliveries: dict[str, int]


def issue_for_week(session: Session, week: Week) -> IssueRow | None:
    """The issue of ``week``, if one was built."""
    return session.exec(select(IssueRow).where(IssueRow.week == str(week))).first()


def get_issue(session: Session, number: int) -> IssueRow:
    """The issue numbered ``number``; IssueNotFound otherwise."""
    row = session.exec(select(IssueRow).where(IssueRow.number == number)).first()
    if row is None:
        raise IssueNotFound(f"there is no issue {number}; `newsletter issue list` shows the issues")
    return row


def create_issue(session: Session, *, week: Week, emails: Sequence[tuple[RenderedEmail, int]],
                 now: datetime | None = None) -> IssueRow:
    """Store a new draft issue numbered after the last one, with one rendered email per cohort.

    ``emails`` pairs each cohort's rendered email with how many comparisons it holds; it must include
    the ``all`` cohort, which is the web version and the default preview.
    """
    counts = {email.cohort_key: count for email, count in emails}
    full = next((email for email, _ in emails if email.cohort_key == ALL), None)
    if full is None:
        raise ValueError("the rendered email of the 'all' cohort is required")
    number = (session.exec(select(func.max(IssueRow.number))).one() or 0) + 1
    issue = IssueRow(number=number, week=str(week), subject=full.subject, status=S.DRAFT,
                     comparison_count=counts[ALL], created_at=now or datetime.now(UTC))
    session.add(issue)
    session.flush()
    _add_emails(session, issue, emails)
    return issue


def _add_emails(session: Session, issue: IssueRow, emails: Sequence[tuple[RenderedEmail, int]]) -> None:
    """Store one row per cohort's rendered email; the ``all`` cohort's subject and count become the issue's."""
    assert issue.id is not None
    for email, count in emails:
        session.add(IssueCohortRow(issue_id=issue.id, cohort_key=email.cohort_key, subject=email.subject,
                                   preheader=email.preheader, html=email.html, text=email.text,
                                   comparison_count=count))
        if email.cohort_key == ALL:
            issue.subject, issue.comparison_count = email.subject, count
    session.flush()


def replace_emails(session: Session, issue: IssueRow, emails: Sequence[tuple[RenderedEmail, int]]) -> None:
    """Swap the issue's rendered emails for a new rendering (after an edit); only before sending starts.

    Queued deliveries of cohorts that no longer get a rendered email are removed; readers of cohorts that now get
    one are queued by the caller (:func:`newsletter.deliveries.queue`).
    """
    if issue.status not in EDITABLE:
        raise IssueStateError(f"issue {issue.number} is {issue.status}; only a draft or approved issue can change")
    session.exec(delete(IssueCohortRow).where(col(IssueCohortRow.issue_id) == issue.id))
    _add_emails(session, issue, emails)
    assert issue.id is not None
    deliveries.remove_unrendered(session, issue.id, [email.cohort_key for email, _ in emails])
    session.flush()


def rendered_emails(session: Session, issue: IssueRow) -> dict[str, RenderedEmail]:
    """The issue's rendered emails by cohort key."""
    rows = session.exec(select(IssueCohortRow).where(IssueCohortRow.issue_id == issue.id))
    return {r.cohort_key: RenderedEmail(r.cohort_key, r.subject, r.preheader, r.html, r.text) for r in rows}


def cohort_keys(session: Session, issue: IssueRow) -> set[str]:
    """Keys of the cohorts the issue was rendered for (without loading the rendered HTML)."""
    return set(session.exec(select(IssueCohortRow.cohort_key).where(IssueCohortRow.issue_id == issue.id)))


def start_sending(session: Session, issue: IssueRow, recipients: RecipientSource, *, top_up: bool = True,
                  local: LocalTime | None = None, now: datetime | None = None, size: int = 100) -> None:
    """Move the issue to ``sending`` (if it isn't yet), with ``top_up`` queue readers who have no delivery, and give
    every queued delivery without one its due time (``now``, or with ``local`` the reader's next local send time)
    and its batch of up to ``size`` deliveries of that time, the unit senders claim.

    The one start of every send, in-process or handed to workers; IssueStateError for a sent or cancelled issue.
    """
    if issue.status != S.SENDING:
        try:
            transition(issue, S.SENDING)
        except IssueStateError:
            if issue.status != S.SENDING:  # another process started it meanwhile: that is the same send
                raise
    if top_up:
        deliveries.queue(session, issue, recipients)
    assert issue.id is not None
    deliveries.schedule(session, issue.id, start=now or datetime.now(UTC), local=local, source=recipients, size=size)


def may_become(issue: IssueRow, to: str) -> None:
    """IssueStateError unless the lifecycle lets ``issue`` move to status ``to`` (or it already has it)."""
    if issue.status != to and to not in TRANSITIONS[issue.status]:
        raise IssueStateError(f"issue {issue.number} is {issue.status}; it cannot become {to}")


def transition(issue: IssueRow, to: str, *, error: str | None = None) -> None:
    """Move ``issue`` to status ``to`` in one guarded UPDATE; IssueStateError when the lifecycle forbids it, or
    when another session changed the status since ``issue`` was read (the second of two racing moves loses)."""
    if to not in TRANSITIONS[issue.status]:
        raise IssueStateError(f"issue {issue.number} is {issue.status}; it cannot become {to}")
    values: dict[str, Any] = {"status": to, "error": error}
    if to == S.SENT:
        values["sent_at"] = datetime.now(UTC)
    _guarded(issue, issue.status, values)


def _guarded(issue: IssueRow, seen: str, values: dict[str, Any]) -> None:
    """UPDATE the issue only where its status is still ``seen``, then mirror the new values on the object.

    On PostgreSQL a concurrent UPDATE of the row waits for this transaction and re-checks the WHERE; SQLite
    has one writer. Either way the status read and the status written cannot drift apart.
    """
    session = object_session(issue)
    if session is None:
        raise IssueStateError(f"issue {issue.number} is not attached to a session; load it with get_issue")
    result = session.execute(update(IssueRow).where(col(IssueRow.id) == issue.id, col(IssueRow.status) == seen)
                             .values(**values).execution_options(synchronize_session=False))
    if result.rowcount != 1:  # type: ignore[attr-defined]
        now = session.execute(select(IssueRow.status).where(IssueRow.id == issue.id)).scalar_one()
        set_committed_value(issue, "status", now)
        raise IssueStateError(f"issue {issue.number} is now {now}; it cannot become {values['status']}")
    for name, value in values.items():
        set_committed_value(issue, name, value)


def reopen_for_retry(issue: IssueRow) -> None:
    """A sent issue goes back to ``sending`` so its requeued failed deliveries go out; nothing else changes.

    Not a lifecycle transition: a sent issue is never sent again to anyone else (callers send it without
    topping up the queue). Guarded like :func:`transition`.
    """
    if issue.status == S.SENT:
        _guarded(issue, S.SENT, {"status": S.SENDING, "sent_at": None})


def is_sending(session: Session, issue_id: int) -> bool:
    """Whether the issue is still ``sending``: an editor's pause or cancel stops a send between batches."""
    return session.exec(select(IssueRow.status).where(IssueRow.id == issue_id)).first() == S.SENDING


def delivery_counts(session: Session, issue_id: int | None) -> dict[str, int]:
    """How many deliveries of the issue are in each status."""
    rows = session.exec(select(DeliveryRow.status, func.count()).where(DeliveryRow.issue_id == issue_id)
                        .group_by(DeliveryRow.status))
    return {status: count for status, count in rows}


def list_issues(session: Session) -> list[IssueSummary]:
    """Every issue, newest first, with its delivery counts (three queries, however many issues)."""
    issues = list(session.exec(select(IssueRow).order_by(col(IssueRow.number).desc())))
    cohorts: dict[int | None, int] = dict(session.exec(
        select(IssueCohortRow.issue_id, func.count()).group_by(col(IssueCohortRow.issue_id))).all())
    deliveries: dict[int | None, dict[str, int]] = {}
    for issue_id, status, count in session.exec(select(DeliveryRow.issue_id, DeliveryRow.status, func.count())
                                                .group_by(col(DeliveryRow.issue_id), col(DeliveryRow.status))):
        deliveries.setdefault(issue_id, {})[status] = count
    return [IssueSummary(i.number, i.week, i.subject, i.status, i.created_at, cohorts.get(i.id, 0),
                         deliveries.get(i.id, {})) for i in issues]
