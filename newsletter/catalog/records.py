"""What an importer hands to the store: tools by value, comparisons referring to tools by slug."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from newsletter.values import CommunityVotes, PanelVerdict, Review, Tool


@dataclass(frozen=True, slots=True)
class SideRecord:
    """One side of an imported comparison; the panel figure is the published one, if any."""

    tool_slug: str
    panel: PanelVerdict | None
    community: CommunityVotes | None
    reviews: tuple[Review, ...]


@dataclass(frozen=True, slots=True)
class ComparisonRecord:
    """An imported comparison."""

    slug: str
    title: str
    published: date
    sides: tuple[SideRecord, SideRecord]


@dataclass(frozen=True, slots=True)
class ImportBatch:
    """Everything one import file holds.

    ``first_seen_dates``: the tools' dates are when this source first saw them (comparison pages), so a
    stored earlier date is kept; JSON exports carry authoritative dates and overwrite.
    """

    source: str
    tools: tuple[Tool, ...]
    comparisons: tuple[ComparisonRecord, ...]
    first_seen_dates: bool = False
