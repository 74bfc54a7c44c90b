"""What an importer hands to the store: tools by value, comparisons (``Comparison[str]``) naming tools by slug."""

from __future__ import annotations

from dataclasses import dataclass

from newsletter.values import Comparison, Tool


@dataclass(frozen=True, slots=True)
class ImportBatch:
    """Everything one import file holds.

    ``first_seen_dates``: the tools' dates are when this source first saw them (comparison pages), so a
    stored earlier date is kept; JSON exports carry authoritative dates and overwrite.
    """

    source: str
    tools: tuple[Tool, ...]
    comparisons: tuple[Comparison[str], ...]
    first_seen_dates: bool = False
