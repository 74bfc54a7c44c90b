"""The panel meets the crowd: reader votes beside the panel's verdict, per comparison and tool.

Three readings of the same counts (``votes.tallies``): the desk's standings of an issue's comparisons (with a flag
where panel and readers differ by more than ``NEWSLETTER_VOTE_DISAGREEMENT_POINTS``), the recap of the previous
issue that opens the next one (tools with at least ``NEWSLETTER_VOTE_RECAP_MIN_VOTES`` votes), and the export the
site publishes beside its Community figure (``newsletter votes export``, ``/votes.json``). Reader votes are never
added to the imported Community figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlmodel import Session, col, select

from newsletter.catalog import panel
from newsletter.catalog.store import load_comparisons
from newsletter.models import ComparisonRow, IssueRow
from newsletter.statuses import IssueStatus
from newsletter.values import Comparison, Recap, RecapLine
from newsletter.votes import Tally, tallies


@dataclass(frozen=True, slots=True)
class ToolStanding:
    """One tool of a comparison: the panel's percent ship and the readers'."""

    slug: str
    name: str
    panel_percent: int | None
    readers: Tally
    from_issue: int = 0  # votes last cast from the issue being looked at
    flagged: bool = False  # panel and readers differ by more than the margin

    @property
    def gap(self) -> int | None:
        """Readers' percent ship minus the panel's, in points; None unless both are known."""
        readers = self.readers.ship_percent
        return None if readers is None or self.panel_percent is None else readers - self.panel_percent


@dataclass(frozen=True, slots=True)
class Standing:
    """One comparison, panel against readers, tool by tool."""

    slug: str
    title: str
    tools: tuple[ToolStanding, ...]


def comparisons_by_slug(session: Session, slugs: Sequence[str]) -> dict[str, Comparison]:
    """The catalog's comparisons with these slugs (panel verdicts resolved); unknown slugs are left out."""
    rows = list(session.exec(select(ComparisonRow).where(col(ComparisonRow.slug).in_(list(slugs)))))
    return {c.slug: c for c in load_comparisons(session, rows)}


def standings(session: Session, slugs: Sequence[str], *, margin: int,
              issue_number: int | None = None) -> list[Standing]:
    """Panel and readers for each comparison of ``slugs`` still in the catalog, in that order.

    A tool is flagged when readers voted and their percent ship is more than ``margin`` points from the panel's.
    ``issue_number`` also counts the votes last cast from that issue.
    """
    found = comparisons_by_slug(session, slugs)
    counts = tallies(session, comparisons=list(found))
    from_issue = tallies(session, comparisons=list(found), issue_number=issue_number) if issue_number else {}
    return [_standing(found[slug], counts, from_issue, margin) for slug in slugs if slug in found]


def standing_of(session: Session, comparison: Comparison, *, margin: int) -> Standing:
    """Panel and readers for one comparison already loaded (a vote's answer has it from checking the vote)."""
    return _standing(comparison, tallies(session, comparisons=[comparison.slug]), {}, margin)


def _standing(comparison: Comparison, counts: dict[tuple[str, str], Tally], from_issue: dict[tuple[str, str], Tally],
              margin: int) -> Standing:
    tools = []
    for side in comparison.sides:
        key = (comparison.slug, side.tool.slug)
        verdict, readers = (side.verdict.percent if side.verdict else None), counts.get(key, Tally(0, 0))
        gap = None if verdict is None or readers.ship_percent is None else readers.ship_percent - verdict
        tools.append(ToolStanding(side.tool.slug, side.tool.name, verdict, readers,
                                  from_issue.get(key, Tally(0, 0)).votes, gap is not None and abs(gap) > margin))
    return Standing(comparison.slug, comparison.title, tuple(tools))


def previous_issue(session: Session, *, before: int | None = None) -> int | None:
    """The number of the latest sent issue (before issue ``before``, when given): the one a recap is about."""
    query = select(IssueRow.number).where(IssueRow.status == IssueStatus.SENT)
    if before is not None:
        query = query.where(IssueRow.number < before)
    return session.exec(query.order_by(col(IssueRow.number).desc())).first()


def recap(session: Session, *, before: int | None, min_votes: int) -> Recap | None:
    """The recap of the previous sent issue's votes: tools with a panel verdict and at least ``min_votes`` votes
    last cast from that issue, in the catalog's order; None when nothing qualifies (the issue then opens without).

    The readers *sided with the panel* on a tool when their label (Ship above 50 %, Mixed at 50 %, Skip below, the
    panel's own rule on the rounded percent) is the panel's label.
    """
    number = previous_issue(session, before=before)
    if number is None:
        return None
    counts = {key: tally for key, tally in tallies(session, issue_number=number).items() if tally.votes >= min_votes}
    if not counts:
        return None
    found = comparisons_by_slug(session, sorted({slug for slug, _ in counts}))
    lines = tuple(line for slug in sorted(found) for line in _lines(found[slug], counts))
    return Recap(number, lines) if lines else None


def _lines(comparison: Comparison, counts: dict[tuple[str, str], Tally]) -> list[RecapLine]:
    categories = frozenset(side.tool.category for side in comparison.sides)
    free = any(side.tool.pricing_tier == "Free" for side in comparison.sides)
    lines = []
    for side in comparison.sides:
        tally = counts.get((comparison.slug, side.tool.slug))
        if tally is None or side.verdict is None or tally.ship_percent is None:
            continue
        readers = tally.ship_percent
        lines.append(RecapLine(comparison.title, side.tool.name, side.verdict.percent, readers, tally.votes,
                               panel.label_for(readers) == side.verdict.label, categories, free))
    return lines


def export(session: Session, *, since: datetime | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Per comparison and tool: reader votes, ship votes and percent ship (votes last cast at or after ``since``).

    No personal data: counts only. The same document is ``newsletter votes export`` and ``/votes.json``.
    """
    by_comparison: dict[str, list[dict[str, Any]]] = {}
    for (comparison, tool), tally in sorted(tallies(session, since=since).items()):
        by_comparison.setdefault(comparison, []).append(
            {"tool": tool, "votes": tally.votes, "ship": tally.ship, "ship_percent": tally.ship_percent})
    return {"generated_at": _stamp(now or datetime.now(UTC)), "since": _stamp(since) if since else None,
            "comparisons": [{"comparison": slug, "tools": tools} for slug, tools in by_comparison.items()]}


def _stamp(moment: datetime) -> str:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def day_start(text: str) -> datetime:
    """Midnight UTC of the day ``text`` names (YYYY-MM-DD): where ``--since`` and ``?since=`` start counting;
    ValueError saying the expected form."""
    try:
        return datetime.combine(date.fromisoformat(text.strip()), datetime.min.time(), tzinfo=UTC)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a date; write it as 2026-11-30") from exc
