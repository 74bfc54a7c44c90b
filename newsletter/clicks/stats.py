"""An issue's click figures: per comparison (a comparison's links summed), in total, and its unique readers.

Unique figures come from the ``first_on_link`` / ``first_in_issue`` marks written with each click, not from the
reader column, so they stay right after a reader is erased. They exist only where readers were tracked.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Integer, case, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from newsletter.models import ClickRow, IssueLinkRow


@dataclass(frozen=True, slots=True)
class Line:
    """The clicks of one comparison (every link of it), or of one other link of the issue, in reading order."""

    label: str
    comparison: str | None
    clicks: int
    unique: int


@dataclass(frozen=True, slots=True)
class ClickFigures:
    """An issue's clicks: its lines, the total, readers who clicked anything, and whether readers were tracked."""

    lines: tuple[Line, ...]
    clicks: int
    readers: int
    tracked: bool


def click_figures(session: Session, issue_id: int) -> ClickFigures:
    """The click figures of the issue with id ``issue_id``, in two queries (zeros for links nobody followed)."""
    first = func.coalesce(func.sum(case((col(ClickRow.first_on_link), 1), else_=0)), 0)
    rows = session.execute(  # six columns: SQLAlchemy's select (SQLModel's is typed up to four)
        sa_select(col(IssueLinkRow.link), col(IssueLinkRow.label), col(IssueLinkRow.comparison),
                  col(IssueLinkRow.tracked), func.count(col(ClickRow.id)), first)
        .join(ClickRow, col(ClickRow.link_id) == col(IssueLinkRow.id), isouter=True)
        .where(col(IssueLinkRow.issue_id) == issue_id)
        .group_by(col(IssueLinkRow.link), col(IssueLinkRow.label), col(IssueLinkRow.comparison),
                  col(IssueLinkRow.tracked))
        .order_by(col(IssueLinkRow.link))).all()
    lines: dict[str, Line] = {}
    for _link, label, comparison, _tracked, clicks, unique in rows:
        key = comparison or label
        before = lines.get(key, Line(label, comparison, 0, 0))
        lines[key] = Line(before.label, comparison, before.clicks + int(clicks), before.unique + int(unique))
    readers = session.exec(select(func.coalesce(func.sum(func.cast(col(ClickRow.first_in_issue), Integer)), 0))
                           .where(ClickRow.issue_id == issue_id)).one()
    return ClickFigures(tuple(lines.values()), sum(line.clicks for line in lines.values()), int(readers),
                        any(row[3] for row in rows))


def reader_clicks(session: Session, subscriber_id: int) -> list[dict[str, object]]:
    """The clicks recorded as this reader's (tracked mode), oldest first, for their data export: when, which issue
    (its id) and where the link went."""
    rows = session.exec(select(ClickRow.clicked_at, ClickRow.issue_id, IssueLinkRow.target)
                        .join(IssueLinkRow, col(IssueLinkRow.id) == col(ClickRow.link_id))
                        .where(ClickRow.subscriber_id == subscriber_id).order_by(col(ClickRow.id)))
    return [{"clicked_at": at.isoformat(), "issue_id": issue, "target": target} for at, issue, target in rows]
