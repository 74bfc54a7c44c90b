"""Catalogs made for a test: many comparisons in one week, and text as long as the import format allows."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from newsletter.catalog import panel
from newsletter.catalog.json_format import parse_json
from newsletter.values import Comparison, Side

PERSONAS = ("Builder", "Skeptic", "Futurist", "Founder")
REVIEW = ("The primitive is clean: one endpoint with tool use, structured outputs and a sandbox that resets "
          "between runs. The moment of truth is the first payload, and it arrives before the coffee does. "
          "Setup is one command and a key. Every other tool in the category asks for a week of configuration.")


def many(count: int, published: date, *, long: bool = False) -> dict[str, Any]:
    """``count`` comparisons of fresh tools published on ``published``, four scored reviews a side.

    ``long`` stretches every field the digest shows: long names and categories, taglines and pricing notes
    of many words, an unbroken 90-character word, a slug near its limit.
    """
    stretch = "-with-an-unusually-long-and-descriptive-name" if long else ""
    tools, comparisons = [], []
    for i in range(count):
        pair = []
        for side in "ab":
            slug = f"tool-{i}{side}{stretch}"
            pair.append(slug)
            tools.append({
                "slug": slug, "name": slug.replace("-", " ").title(),
                "tagline": ("Turns the longest meeting transcripts into decisions, owners and deadlines, then "
                            "files them in the tracker your team already uses every day") if long else f"Tool {i}",
                "description": "A tool.", "category": ("Developer Tools and Continuous Integration Pipelines"
                                                       if long else "Developer Tools"),
                "pricing_tier": "Free" if side == "b" else "Paid",
                "pricing_note": ("Free for public repositories and open-source maintainers; $9 per seat per month "
                                 "for private repositories, billed yearly" if long else None),
                "published": published.isoformat()})
        sides = [{"tool": slug, "panel": None, "community": {"votes": 1234567, "ship_percent": 71},
                  "reviews": [{"persona": p, "score": 90 - 15 * k - 10 * s, "verdict": "ship" if k < 2 - s else "skip",
                               "text": REVIEW + (" Supercalifragilistic" + "x" * 70 if long else "")}
                              for k, p in enumerate(PERSONAS)]}
                 for s, slug in enumerate(pair)]
        comparisons.append({"slug": f"{pair[0]}-vs-{pair[1]}", "title": f"Tool {i}A vs Tool {i}B" + (
            " — the head-to-head of two tools whose names are long enough to wrap twice" if long else ""),
            "published": published.isoformat(), "sides": sides})
    return {"format": "weekly-ai-tool-verdicts/1", "tools": tools, "comparisons": comparisons}


def write(path: Path, catalog: dict[str, Any]) -> Path:
    """``catalog`` as a JSON import file at ``path``."""
    path.write_text(json.dumps(catalog), encoding="utf-8")
    return path


def comparisons(document: dict[str, Any]) -> list[Comparison]:
    """The comparisons of a catalog in the JSON import format as the store would give them, without a database."""
    batch = parse_json(json.dumps(document), source="test catalog")
    tools = {tool.slug: tool for tool in batch.tools}
    return [Comparison(c.slug, c.title, c.published, tuple(  # type: ignore[arg-type]
        Side(tools[s.tool], panel.resolve(s.verdict, s.reviews), s.community, s.reviews) for s in c.sides))
        for c in batch.comparisons]
