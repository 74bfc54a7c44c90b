"""The JSON import/export format: parse with schema validation, and write back.

The schema ships beside this module (``catalog.schema.json``); every error names the file, the JSON path
and what to change.
"""

from __future__ import annotations

import json
from datetime import date
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from newsletter.catalog.panel import check_published, label_for
from newsletter.catalog.records import ComparisonRecord, ImportBatch, SideRecord
from newsletter.errors import CatalogImportError
from newsletter.values import CommunityVotes, PanelVerdict, Review, Tool

FORMAT = "weekly-ai-tool-verdicts/1"
_HINTS = {
    "required": "add the missing field",
    "additionalProperties": "remove the unknown field (see catalog.schema.json for the allowed ones)",
    "enum": "use one of the listed values",
    "const": f"set it to {FORMAT!r}",
    "pattern": "slugs are lowercase words joined by '-'; dates are YYYY-MM-DD; categories have no commas",
    "type": "change the value's type",
    "minItems": "a comparison has exactly two sides",
    "maxItems": "a comparison has exactly two sides and at most four reviews per side",
    "minLength": "fill in the text",
}


@cache
def schema() -> dict[str, Any]:
    """The shipped JSON Schema of the format."""
    text = resources.files("newsletter.catalog").joinpath("catalog.schema.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def parse_json(text: str, *, source: str) -> ImportBatch:
    """Validate and parse one JSON catalog; CatalogImportError names file, JSON path and fix."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CatalogImportError(f"{source}: line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    errors = sorted(Draft202012Validator(schema()).iter_errors(document), key=lambda e: list(e.path))
    if errors:
        raise CatalogImportError(f"{source}: " + "\n  ".join(_explain(error) for error in errors[:10]))
    tools = tuple(_tool(item, f"$.tools[{i}]", source) for i, item in enumerate(document["tools"]))
    comparisons = tuple(
        _comparison(item, f"$.comparisons[{i}]", source) for i, item in enumerate(document["comparisons"])
    )
    _unique([tool.slug for tool in tools], "$.tools", source)
    _unique([comparison.slug for comparison in comparisons], "$.comparisons", source)
    return ImportBatch(source, tools, comparisons)


def _explain(error: ValidationError) -> str:
    hint = _HINTS.get(str(error.validator), "see catalog.schema.json")
    return f"at {error.json_path}: {error.message}; {hint}"


def _date(text: str, path: str, source: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CatalogImportError(f"{source}: at {path}: {text!r} is not a real date; write YYYY-MM-DD") from None


def _unique(slugs: list[str], path: str, source: str) -> None:
    seen: set[str] = set()
    for i, slug in enumerate(slugs):
        if slug in seen:
            raise CatalogImportError(f"{source}: at {path}[{i}].slug: {slug!r} appears twice; keep one")
        seen.add(slug)


def _tool(item: dict[str, Any], path: str, source: str) -> Tool:
    return Tool(
        slug=item["slug"], name=item["name"], tagline=item["tagline"], description=item["description"],
        category=item["category"], pricing_tier=item["pricing_tier"], pricing_note=item.get("pricing_note"),
        published=_date(item["published"], f"{path}.published", source),
    )


def _comparison(item: dict[str, Any], path: str, source: str) -> ComparisonRecord:
    sides = tuple(_side(side, f"{path}.sides[{i}]", source) for i, side in enumerate(item["sides"]))
    if sides[0].tool_slug == sides[1].tool_slug:
        raise CatalogImportError(f"{source}: at {path}.sides: both sides are {sides[0].tool_slug!r}; "
                                 "a comparison needs two different tools")
    published = _date(item["published"], f"{path}.published", source)
    return ComparisonRecord(item["slug"], item["title"], published, (sides[0], sides[1]))


def _side(item: dict[str, Any], path: str, source: str) -> SideRecord:
    panel = item.get("panel")
    verdict = None
    if panel is not None:
        problem = check_published(panel["percent"], panel.get("ship"), panel.get("size"))
        if problem:
            raise CatalogImportError(f"{source}: at {path}.panel: {problem}")
        verdict = PanelVerdict(panel["percent"], label_for(panel["percent"]), panel.get("ship"), panel.get("size"))
    community = item.get("community")
    votes = CommunityVotes(community["votes"], community.get("ship_percent")) if community else None
    reviews = tuple(_review(review) for review in item["reviews"])
    personas = [review.persona for review in reviews]
    if len(set(personas)) != len(personas):
        raise CatalogImportError(f"{source}: at {path}.reviews: a persona reviews this tool twice; keep one")
    return SideRecord(item["tool"], verdict, votes, reviews)


def _review(item: dict[str, Any]) -> Review:
    verdict = item.get("verdict")
    return Review(item["persona"], item["text"], item.get("score"), None if verdict is None else verdict == "ship")


def dump_json(tools: list[Tool], comparisons: list[ComparisonRecord]) -> str:
    """The catalog as import-format JSON, sorted by slug so that equal catalogs give equal files."""
    document = {
        "format": FORMAT,
        "tools": [_tool_json(tool) for tool in sorted(tools, key=lambda t: t.slug)],
        "comparisons": [_comparison_json(c) for c in sorted(comparisons, key=lambda c: c.slug)],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _tool_json(tool: Tool) -> dict[str, Any]:
    return {
        "slug": tool.slug, "name": tool.name, "tagline": tool.tagline, "description": tool.description,
        "category": tool.category, "pricing_tier": tool.pricing_tier, "pricing_note": tool.pricing_note,
        "published": tool.published.isoformat(),
    }


def _comparison_json(comparison: ComparisonRecord) -> dict[str, Any]:
    return {
        "slug": comparison.slug, "title": comparison.title, "published": comparison.published.isoformat(),
        "sides": [_side_json(side) for side in comparison.sides],
    }


def _side_json(side: SideRecord) -> dict[str, Any]:
    panel: dict[str, Any] | None = None
    if side.panel is not None:
        panel = {"percent": side.panel.percent}
        if side.panel.ship is not None:
            panel |= {"ship": side.panel.ship, "size": side.panel.size}
    community = None
    if side.community is not None:
        community = {"votes": side.community.votes, "ship_percent": side.community.ship_percent}
    reviews = [
        {"persona": r.persona, "text": r.text, "score": r.score,
         "verdict": None if r.ship is None else ("ship" if r.ship else "skip")}
        for r in side.reviews
    ]
    return {"tool": side.tool_slug, "panel": panel, "community": community, "reviews": reviews}
