"""Catalog queries: upsert imported records, load comparisons as values, read everything back for export.

Rows never leave this module; callers get ``values`` or ``records``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import delete, or_
from sqlmodel import Session, col, select

from newsletter.catalog import panel
from newsletter.catalog.records import ImportBatch
from newsletter.errors import UnknownToolError
from newsletter.models import ComparisonRow, ReviewRow, SideRow, ToolRow
from newsletter.values import CommunityVotes, Comparison, PanelVerdict, Review, Side, Tool, Week

Change = Literal["created", "updated", "unchanged"]


@dataclass
class ImportSummary:
    """What an import did, counted by kind and change."""

    tools: dict[Change, int] = field(default_factory=lambda: defaultdict(int))
    comparisons: dict[Change, int] = field(default_factory=lambda: defaultdict(int))

    def describe(self) -> str:
        """One line for the operator."""
        def part(counts: dict[Change, int], noun: str) -> str:
            return f"{noun}: {counts['created']} new, {counts['updated']} updated, {counts['unchanged']} unchanged"
        return f"{part(self.tools, 'tools')}; {part(self.comparisons, 'comparisons')}"


def apply_batches(session: Session, batches: Sequence[ImportBatch]) -> ImportSummary:
    """Upsert every batch by slug inside the caller's transaction; unknown tool slugs raise."""
    summary = ImportSummary()
    for batch in batches:
        for tool in batch.tools:
            summary.tools[_upsert_tool(session, tool, batch.first_seen_dates)] += 1
    session.flush()
    tool_ids = {row.slug: row.id for row in session.exec(select(ToolRow))}
    for batch in batches:
        for record in batch.comparisons:
            missing = [s.tool for s in record.sides if s.tool not in tool_ids]
            if missing:
                raise UnknownToolError(
                    f"{batch.source}: comparison {record.slug!r} names tool {missing[0]!r}, which is neither "
                    "stored nor in this import; add the tool to the file's 'tools'"
                )
            summary.comparisons[_upsert_comparison(session, record, tool_ids)] += 1
    return summary


def _upsert_tool(session: Session, tool: Tool, first_seen: bool) -> Change:
    row = session.exec(select(ToolRow).where(ToolRow.slug == tool.slug)).first()
    values = _tool_fields(tool)
    if row is None:
        session.add(ToolRow(**values))
        return "created"
    if first_seen:
        values["published"] = min(row.published, tool.published)
        if tool.pricing_note is None:
            values["pricing_note"] = row.pricing_note  # compact pages omit it; keep what we know
    return _assign(row, values)


def _tool_fields(tool: Tool) -> dict[str, Any]:
    return {
        "slug": tool.slug, "name": tool.name, "tagline": tool.tagline, "description": tool.description,
        "category": tool.category, "pricing_tier": tool.pricing_tier, "pricing_note": tool.pricing_note,
        "published": tool.published,
    }


def _assign(row: ToolRow | ComparisonRow, values: dict[str, Any]) -> Change:
    changed = {key: value for key, value in values.items() if getattr(row, key) != value}
    for key, value in changed.items():
        setattr(row, key, value)
    return "updated" if changed else "unchanged"


def _upsert_comparison(session: Session, record: Comparison[str], tool_ids: dict[str, int | None]) -> Change:
    row = session.exec(select(ComparisonRow).where(ComparisonRow.slug == record.slug)).first()
    fields: dict[str, Any] = {"slug": record.slug, "title": record.title, "published": record.published}
    if row is None:
        row = ComparisonRow(**fields)
        session.add(row)
        session.flush()
        change: Change = "created"
    else:
        change = _assign(row, fields)
        if _load_records(session, [row])[0].sides != record.sides:
            change = "updated"
        _delete_sides(session, row.id)
    assert row.id is not None
    for position, side in enumerate(record.sides):
        tool_id = tool_ids[side.tool]
        assert tool_id is not None
        _insert_side(session, row.id, position, side, tool_id)
    return change


def _delete_sides(session: Session, comparison_id: int | None) -> None:
    side_ids = select(SideRow.id).where(SideRow.comparison_id == comparison_id)
    session.exec(delete(ReviewRow).where(col(ReviewRow.side_id).in_(side_ids)))
    session.exec(delete(SideRow).where(col(SideRow.comparison_id) == comparison_id))
    session.flush()


def _insert_side(session: Session, comparison_id: int, position: int, side: Side[str], tool_id: int) -> None:
    published = side.verdict
    community = side.community
    row = SideRow(
        comparison_id=comparison_id, position=position, tool_id=tool_id,
        panel_percent=published.percent if published else None,
        panel_ship=published.ship if published else None,
        panel_size=published.size if published else None,
        panel_label=published.label if published else None,
        community_votes=community.votes if community else None,
        community_ship_percent=community.ship_percent if community else None,
    )
    session.add(row)
    session.flush()
    assert row.id is not None
    for index, review in enumerate(side.reviews):
        session.add(ReviewRow(side_id=row.id, persona=review.persona, position=index, score=review.score,
                              ship=review.ship, text=review.text))


def comparisons_for_week(session: Session, week: Week) -> list[Comparison]:
    """Comparisons published by the week's end that are either published in it or involve a tool new in it.

    One query for the candidates; sides, tools and reviews follow in three bulk reads (no N+1).
    """
    new_tools = select(ToolRow.id).where(ToolRow.published >= week.monday, ToolRow.published <= week.sunday)
    with_new_tool = select(SideRow.comparison_id).where(col(SideRow.tool_id).in_(new_tools))
    query = select(ComparisonRow).where(
        ComparisonRow.published <= week.sunday,
        or_(col(ComparisonRow.published) >= week.monday, col(ComparisonRow.id).in_(with_new_tool)),
    )
    return load_comparisons(session, list(session.exec(query)))


def all_tools(session: Session) -> list[Tool]:
    """Every stored tool, by slug."""
    return [_tool_value(row) for row in session.exec(select(ToolRow).order_by(col(ToolRow.slug)))]


def all_comparison_records(session: Session) -> list[Comparison[str]]:
    """Every comparison as it was imported (published figures only, nothing derived): the export's content."""
    rows = list(session.exec(select(ComparisonRow).order_by(col(ComparisonRow.slug))))
    return _load_records(session, rows)


def load_comparisons(session: Session, rows: Sequence[ComparisonRow]) -> list[Comparison]:
    """Comparison values for the given rows, with panel verdicts resolved."""
    records = _load_records(session, rows)
    tools = {tool.slug: tool for tool in _tools_of(session, records)}
    return [
        Comparison(record.slug, record.title, record.published,
                   (_side_value(record.sides[0], tools), _side_value(record.sides[1], tools)))
        for record in records
    ]


def _side_value(record: Side[str], tools: dict[str, Tool]) -> Side:
    verdict = panel.resolve(record.verdict, record.reviews)
    return Side(tools[record.tool], verdict, record.community, record.reviews)


def _tools_of(session: Session, records: Iterable[Comparison[str]]) -> list[Tool]:
    slugs = {side.tool for record in records for side in record.sides}
    return [_tool_value(row) for row in session.exec(select(ToolRow).where(col(ToolRow.slug).in_(slugs)))]


def _load_records(session: Session, rows: Sequence[ComparisonRow]) -> list[Comparison[str]]:
    ids = [row.id for row in rows]
    sides = list(session.exec(select(SideRow).where(col(SideRow.comparison_id).in_(ids))))
    slugs = dict(session.exec(select(ToolRow.id, ToolRow.slug).where(
        col(ToolRow.id).in_({s.tool_id for s in sides}))).all())
    reviews: dict[int | None, list[ReviewRow]] = defaultdict(list)
    for review in session.exec(select(ReviewRow).where(col(ReviewRow.side_id).in_([s.id for s in sides]))
                               .order_by(col(ReviewRow.position))):
        reviews[review.side_id].append(review)
    by_comparison: dict[int | None, dict[int, Side[str]]] = defaultdict(dict)
    for side in sides:
        by_comparison[side.comparison_id][side.position] = Side(
            slugs[side.tool_id], _published(side), _community(side),
            tuple(Review(r.persona, r.text, r.score, r.ship) for r in reviews[side.id]),
        )
    return [Comparison(row.slug, row.title, row.published,
                       (by_comparison[row.id][0], by_comparison[row.id][1])) for row in rows]


def _published(side: SideRow) -> PanelVerdict | None:
    if side.panel_percent is None:
        return None
    return PanelVerdict(side.panel_percent, panel.label_for(side.panel_percent), side.panel_ship, side.panel_size)


def _community(side: SideRow) -> CommunityVotes | None:
    return None if side.community_votes is None else CommunityVotes(side.community_votes, side.community_ship_percent)


def _tool_value(row: ToolRow) -> Tool:
    tier: Literal["Free", "Paid"] = "Free" if row.pricing_tier == "Free" else "Paid"
    return Tool(row.slug, row.name, row.tagline, row.description, row.category, tier, row.pricing_note,
                row.published)


def tool_categories(session: Session) -> list[str]:
    """Every category a stored tool has, in alphabetical order: the choices a reader may pick from."""
    return list(session.exec(select(ToolRow.category).distinct().order_by(col(ToolRow.category))))
