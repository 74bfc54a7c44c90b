"""What readers did with one issue, for the desk and ``newsletter issue stats``: clicks per comparison,
click-through against submitted deliveries, votes per tool cast from its links, and readers who unsubscribed
after it.

It lives with the subscribers because unsubscribes are theirs; the click figures come from ``newsletter.clicks``,
the vote tallies from ``newsletter.votes``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from newsletter import issues
from newsletter.clicks.stats import ClickFigures, click_figures
from newsletter.db import session_scope
from newsletter.models import ComparisonRow, DeliveryRow, IssueRow, ToolRow
from newsletter.statuses import REACHED, SubscriberStatus
from newsletter.votes import Tally, tallies
from subscribers.models import Subscriber


@dataclass(frozen=True, slots=True)
class VoteLine:
    """Reader votes on one tool of one comparison, named as the catalog names them (its slug when it has gone)."""

    comparison: str
    tool: str
    tally: Tally


@dataclass(frozen=True, slots=True)
class IssueEngagement:
    """One issue's reader figures: its clicks, the deliveries submitted, and the readers who left after it."""

    number: int
    clicks: ClickFigures
    submitted: int
    unsubscribed: int
    # Votes last cast from this issue's links, per tool: a reader who voted again from a later issue counts there
    # instead, so issues never count one vote twice.
    votes: tuple[VoteLine, ...] = ()

    @property
    def click_through(self) -> float | None:
        """Clicks per submitted delivery, in percent: readers who clicked when readers are tracked, else every click
        (a reader clicking twice counts twice); None before anything was submitted."""
        if not self.submitted:
            return None
        counted = self.clicks.readers if self.clicks.tracked else self.clicks.clicks
        return 100 * counted / self.submitted


def engagement(engine: Engine, number: int) -> IssueEngagement:
    """Issue ``number``'s reader figures, read in one transaction; IssueNotFound when there is no such issue."""
    with session_scope(engine) as session:
        return engagement_of(session, issues.get_issue(session, number))


def engagement_of(session: Session, issue: IssueRow) -> IssueEngagement:
    """``issue``'s reader figures, read in ``session``."""
    assert issue.id is not None
    submitted = session.exec(select(func.count()).select_from(DeliveryRow).where(
        DeliveryRow.issue_id == issue.id, col(DeliveryRow.status).in_(REACHED))).one()
    return IssueEngagement(issue.number, click_figures(session, issue.id), int(submitted),
                           unsubscribed_after(session, issue), vote_lines(session, issue.number))


def vote_lines(session: Session, number: int) -> tuple[VoteLine, ...]:
    """The votes last cast from issue ``number``'s links per tool, by comparison title then tool name."""
    counts = tallies(session, issue_number=number)
    titles = dict(session.exec(select(ComparisonRow.slug, ComparisonRow.title).where(
        col(ComparisonRow.slug).in_({c for c, _ in counts}))).all())
    names = dict(session.exec(select(ToolRow.slug, ToolRow.name).where(
        col(ToolRow.slug).in_({t for _, t in counts}))).all())
    lines = [VoteLine(titles.get(c, c), names.get(t, t), tally) for (c, t), tally in counts.items()]
    return tuple(sorted(lines, key=lambda line: (line.comparison, line.tool)))


def unsubscribed_after(session: Session, issue: IssueRow) -> int:
    """Readers the issue reached who unsubscribed after their own copy was submitted and before the next issue
    started going out: the departures this issue is the last word before. Erasures are not counted (they keep no
    time)."""
    query = (select(func.count()).select_from(DeliveryRow)
             .join(Subscriber, col(Subscriber.id) == col(DeliveryRow.subscriber_id))
             .where(DeliveryRow.issue_id == issue.id, col(DeliveryRow.status).in_(REACHED),
                    Subscriber.status == SubscriberStatus.UNSUBSCRIBED,
                    col(Subscriber.unsubscribed_at) >= col(DeliveryRow.submitted_at)))
    following = _next_start(session, issue.number)
    if following is not None:
        query = query.where(col(Subscriber.unsubscribed_at) < following)
    return int(session.exec(query).one())


def _next_start(session: Session, number: int) -> datetime | None:
    """When the first delivery of a later issue was submitted, if one was."""
    return session.exec(select(func.min(DeliveryRow.submitted_at))
                        .join(IssueRow, col(IssueRow.id) == col(DeliveryRow.issue_id))
                        .where(IssueRow.number > number)).one()
