"""Reader votes: record a reader's Ship or Skip, count them, unlink an erased reader, and say what a vote link may do.

A vote link is ``{public_url}/vote/{comparison}/{tool}/{choice}/{voter token}``: the comparison, the tool and the
choice in the path, the reader's one per-issue token last (``render.SLOTS``' ``voter``). Whether a link may vote is
decided from what was sent, not from the catalog of today: the reader's delivery of that issue must have been
submitted, and the rendered email of their cohort (stored with the issue) must carry that very link.

Only the web route's POST records a vote (scanners fetch every link with GET and HEAD). One row per reader per tool
per comparison: an upsert, so voting again changes the vote and the latest counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import case, func, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from newsletter.models import DeliveryRow, IssueCohortRow, IssueRow, VoteRow
from newsletter.statuses import DeliveryStatus

Choice = Literal["ship", "skip"]
CHOICES: tuple[Choice, ...] = ("ship", "skip")
VOTE_PATH = "/vote"  # under NEWSLETTER_PUBLIC_URL
# What previews (the desk, ``issue preview``, test sends) put where a reader's token goes: the link opens a page that
# says so, instead of a broken link, and can never vote.
PREVIEW_VOTER = "preview"


def choice_of(text: str | None) -> Choice | None:
    """``text`` as a Choice, or None when it is not ``ship`` or ``skip``."""
    return "ship" if text == "ship" else "skip" if text == "skip" else None


def vote_path(comparison: str, tool: str, choice: str) -> str:
    """The path of a vote link up to its token: the part every reader of a cohort shares."""
    return f"{VOTE_PATH}/{comparison}/{tool}/{choice}/"


@dataclass(frozen=True, slots=True)
class Tally:
    """Reader votes on one tool of one comparison: how many, how many ship."""

    votes: int
    ship: int

    @property
    def ship_percent(self) -> int | None:
        """Percent of votes that say ship, rounded; None with no votes."""
        return round(100 * self.ship / self.votes) if self.votes else None


def record(session: Session, *, subscriber_id: int, issue_number: int, comparison: str, tool: str, choice: Choice,
           now: datetime) -> None:
    """Store the reader's vote on ``tool`` in ``comparison``, replacing theirs if they voted before (one statement,
    INSERT … ON CONFLICT DO UPDATE on both databases, so two quick clicks cannot make two rows)."""
    if choice not in CHOICES:
        raise ValueError(f"a vote is ship or skip, not {choice!r}")
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    values = {"subscriber_id": subscriber_id, "comparison": comparison, "tool": tool, "issue_number": issue_number,
              "choice": choice, "created_at": now, "updated_at": now}
    insert = dialect.insert(VoteRow).values(values)
    session.execute(insert.on_conflict_do_update(
        index_elements=["subscriber_id", "comparison", "tool"],
        set_={"choice": choice, "issue_number": issue_number, "updated_at": now}))


def reader_vote(session: Session, subscriber_id: int, comparison: str, tool: str) -> Choice | None:
    """The reader's current vote on ``tool`` in ``comparison``, or None."""
    found = session.exec(select(VoteRow.choice).where(
        VoteRow.subscriber_id == subscriber_id, VoteRow.comparison == comparison, VoteRow.tool == tool)).first()
    return choice_of(found)


def unlink_reader(session: Session, subscriber_id: int) -> int:
    """Erasure: the reader's votes keep counting but no longer name them; how many votes were unlinked."""
    done = session.execute(update(VoteRow).where(col(VoteRow.subscriber_id) == subscriber_id)
                           .values(subscriber_id=None))
    return int(getattr(done, "rowcount", 0) or 0)


def readers_votes(session: Session, subscriber_id: int) -> list[dict[str, object]]:
    """The reader's votes, for their data export."""
    rows = session.exec(select(VoteRow).where(VoteRow.subscriber_id == subscriber_id).order_by(col(VoteRow.id)))
    return [{"comparison": r.comparison, "tool": r.tool, "choice": r.choice, "issue": r.issue_number,
             "voted_at": r.updated_at.isoformat()} for r in rows]


def tallies(session: Session, *, comparisons: Sequence[str] | None = None, issue_number: int | None = None,
            since: datetime | None = None) -> dict[tuple[str, str], Tally]:
    """Votes and ship votes per (comparison, tool), optionally only for some comparisons, votes last cast from one
    issue, or votes last cast at or after ``since``. One grouped query over the (comparison, tool) index."""
    ship = func.sum(case((col(VoteRow.choice) == "ship", 1), else_=0))
    query = select(VoteRow.comparison, VoteRow.tool, func.count(), ship).group_by(
        col(VoteRow.comparison), col(VoteRow.tool))
    if comparisons is not None:
        query = query.where(col(VoteRow.comparison).in_(list(comparisons)))
    if issue_number is not None:
        query = query.where(VoteRow.issue_number == issue_number)
    if since is not None:
        query = query.where(col(VoteRow.updated_at) >= since)
    return {(c, t): Tally(int(n), int(s or 0)) for c, t, n, s in session.exec(query).all()}


def offered(session: Session, *, subscriber_id: int, issue_number: int, comparison: str, tool: str,
            choice: str) -> bool:
    """Whether the reader's email of issue ``issue_number`` carried this vote link: their delivery was submitted
    and the stored rendered email of their cohort holds the link's path (the snapshot is what they were sent)."""
    cohort = session.exec(select(DeliveryRow.cohort_key).join(IssueRow, col(IssueRow.id) == DeliveryRow.issue_id)
                          .where(IssueRow.number == issue_number, DeliveryRow.subscriber_id == subscriber_id,
                                 DeliveryRow.status == DeliveryStatus.SUBMITTED)).first()
    if cohort is None:
        return False
    text = session.exec(select(IssueCohortRow.text).join(IssueRow, col(IssueRow.id) == IssueCohortRow.issue_id)
                        .where(IssueRow.number == issue_number, IssueCohortRow.cohort_key == cohort)).first()
    return text is not None and vote_path(comparison, tool, choice) in text
