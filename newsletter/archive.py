"""The public archive's queries: sent issues, newest first, and the web version of one.

Only sent issues are public; the web version is the all-readers cohort's HTML, still holding its placeholders
(the web layer fills them with neutral links).
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from newsletter.models import IssueCohortRow, IssueRow


def sent_issues(session: Session) -> list[IssueRow]:
    """Every sent issue, newest (highest number) first."""
    return list(session.exec(select(IssueRow).where(IssueRow.status == "sent").order_by(col(IssueRow.number).desc())))


def web_version(session: Session, number: int) -> str | None:
    """The HTML of sent issue ``number`` for every reader (cohort ``all``), or None when no such issue was sent."""
    query = (select(IssueCohortRow.html).join(IssueRow, col(IssueRow.id) == col(IssueCohortRow.issue_id))
             .where(IssueRow.number == number, IssueRow.status == "sent", IssueCohortRow.cohort_key == "all"))
    return session.exec(query).first()


def sent_issue(session: Session, number: int) -> tuple[IssueRow, IssueCohortRow] | None:
    """Sent issue ``number`` with its every-reader (``all``) snapshot, or None when no such issue was sent."""
    query = (select(IssueRow, IssueCohortRow).join(IssueCohortRow, col(IssueRow.id) == col(IssueCohortRow.issue_id))
             .where(IssueRow.number == number, IssueRow.status == "sent", IssueCohortRow.cohort_key == "all"))
    found = session.exec(query).first()
    return None if found is None else (found[0], found[1])


def sent_previews(session: Session, *, limit: int | None = None) -> list[tuple[IssueRow, str]]:
    """Sent issues newest first, each with its preheader (the one-line summary the archive lists)."""
    query = (select(IssueRow, IssueCohortRow.preheader)
             .join(IssueCohortRow, col(IssueRow.id) == col(IssueCohortRow.issue_id))
             .where(IssueRow.status == "sent", IssueCohortRow.cohort_key == "all")
             .order_by(col(IssueRow.number).desc()).limit(limit))
    return [(row, preheader) for row, preheader in session.exec(query)]
