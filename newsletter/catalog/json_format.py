"""The JSON import/export format: parse with schema validation, and write back.

The schema ships beside this module (``catalog.schema.json``); every error names the file, the JSON path
and what to change.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

from newsletter.catalog.panel import check_published, label_for
from newsletter.catalog.records import ImportBatch
from newsletter.catalog.text import refused_character
from newsletter.errors import CatalogImportError
from newsletter.values import CommunityVotes, Comparison, PanelVerdict, Review, Side, Tool

FORMAT = "weekly-ai-tool-verdicts/1"
MAX_DEPTH = 16  # a catalog nests 7 levels; anything far deeper is a mistake (or an attack on the parser)
# Week arithmetic must stay inside what Python's dates hold (an ISO week of 9999 may end in year 10000).
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(9998, 12, 31)
_MULTILINE = {"description", "text"}  # the fields whose text may span lines (see catalog.text)
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{},:]')
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
    "maxLength": "shorten the text",
    "maximum": "use a smaller number",
    "minimum": "use a larger number",
}


@cache
def schema() -> dict[str, Any]:
    """The shipped JSON Schema of the format."""
    text = resources.files("newsletter.catalog").joinpath("catalog.schema.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def parse_json(text: str, *, source: str) -> ImportBatch:
    """Validate and parse one JSON catalog; CatalogImportError names file, JSON path and fix.

    A leading UTF-8 byte-order mark is accepted. Every text field is held to ``catalog.text``'s character
    rule, every number to what the database can store, and the schema's patterns to the whole value.
    """
    document = _load(text.removeprefix("\ufeff"), source)
    problems = _value_problems(document)
    if not problems:
        errors = sorted(_VALIDATOR(schema()).iter_errors(document), key=_path_key)
        problems = [_explain(error) for error in errors[:10]]
    if problems:
        raise CatalogImportError(f"{source}: " + "\n  ".join(problems[:10]))
    tools = tuple(_tool(item, f"$.tools[{i}]", source) for i, item in enumerate(document["tools"]))
    comparisons = tuple(
        _comparison(item, f"$.comparisons[{i}]", source) for i, item in enumerate(document["comparisons"])
    )
    _unique([tool.slug for tool in tools], "$.tools", source)
    _unique([comparison.slug for comparison in comparisons], "$.comparisons", source)
    return ImportBatch(source, tools, comparisons)


def _load(text: str, source: str) -> Any:
    try:
        return json.loads(text, parse_int=_integer)
    except json.JSONDecodeError as exc:
        raise CatalogImportError(f"{source}: line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        path, line, column = _too_deep_at(text)
        raise CatalogImportError(f"{source}: at {path} (line {line} column {column}): nested deeper than "
                                 f"{MAX_DEPTH} levels; a catalog needs 7") from None


class _HugeInteger(int):
    """Stands in for an integer too long for Python to convert; every schema maximum refuses it."""

    digits = 0

    def __repr__(self) -> str:
        return f"a {self.digits}-digit number"


def _integer(literal: str) -> int:
    # int() refuses literals over 4300 digits with a ValueError that has no position; far shorter ones are
    # already beyond every maximum, so hand the schema a stand-in that it refuses with the JSON path.
    if len(literal) <= 30:
        return int(literal)
    huge = _HugeInteger(-(10**30) if literal.startswith("-") else 10**30)
    huge.digits = len(literal.lstrip("-"))
    return huge


def _too_deep_at(text: str) -> tuple[str, int, int]:
    """JSON path, line and column where nesting first passes MAX_DEPTH: a scan of the tokens, strings skipped."""
    frames: list[list[Any]] = []  # per open container: [kind, index or key, expecting a key]
    offset = len(text)
    for token in _TOKENS.finditer(text):
        mark = token[0]
        if mark in "[{":
            if len(frames) >= MAX_DEPTH:
                offset = token.start()
                break
            frames.append(["[", 0, False] if mark == "[" else ["{", "", True])
        elif frames and mark in "]}":
            frames.pop()
        elif frames and mark == ",":
            frames[-1][1:] = [frames[-1][1] + 1, False] if frames[-1][0] == "[" else [frames[-1][1], True]
        elif frames and mark == ":":
            frames[-1][2] = False
        elif frames and frames[-1][0] == "{" and frames[-1][2]:
            frames[-1][1] = mark[1:-1]
    path = "$"
    for kind, place, _ in frames:
        path = f"{path}[{place}]" if kind == "[" else _member(path, place)
    return path, text.count("\n", 0, offset) + 1, offset - text.rfind("\n", 0, offset)


def _value_problems(document: Any) -> list[str]:
    """Nesting beyond MAX_DEPTH and refused characters, each with its JSON path; walked without recursion."""
    problems: list[str] = []
    stack: list[tuple[Any, str, int, bool]] = [(document, "$", 0, False)]
    while stack and len(problems) < 10:
        value, path, depth, multiline = stack.pop()
        if depth > MAX_DEPTH:
            problems.append(f"at {path}: nested deeper than {MAX_DEPTH} levels; a catalog needs 7")
        elif isinstance(value, str) and (bad := refused_character(value, multiline=multiline)):
            problems.append(f"at {path}: {bad}; remove it")
        elif isinstance(value, dict):
            stack.extend((item, _member(path, key), depth + 1, key in _MULTILINE)
                         for key, item in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend((item, f"{path}[{i}]", depth + 1, False) for i, item in reversed(list(enumerate(value))))
    return problems


def _member(path: str, key: str) -> str:
    return f"{path}.{key}" if key.isidentifier() and key.isascii() else f"{path}[{_short(repr(key))}]"


def _path_key(error: ValidationError) -> list[tuple[bool, Any]]:
    # Paths mix indexes and names; pairing each with its kind keeps the sort from comparing int with str.
    return [(isinstance(part, str), part) for part in error.path]


def _short(text: str, limit: int = 120) -> str:
    """``text`` cut in the middle to about ``limit`` characters: messages quote whole values, which may be huge."""
    return text if len(text) <= limit else f"{text[: limit // 2]} … {text[-(limit // 2):]}"


def _explain(error: ValidationError) -> str:
    hint = _HINTS.get(str(error.validator), "see catalog.schema.json")
    return f"at {error.json_path}: {_short(error.message, 300)}; {hint}"


def _whole_pattern(validator: Any, pattern: str, instance: Any, _schema: Any) -> Iterator[ValidationError]:
    # JSON Schema's `pattern` is a search, and Python's `$` also matches before a final newline, so
    # "slug\n" would pass ^…$: every pattern of the shipped schema is meant for the whole value.
    if validator.is_type(instance, "string") and re.fullmatch(pattern, instance) is None:
        yield ValidationError(f"{_short(repr(instance))} does not match {pattern!r}")


def _is_integer(_checker: Any, instance: Any) -> bool:
    # JSON Schema calls 70.0 an integer; the catalog stores ints, so 70.0, 1e300 and true are refused.
    return isinstance(instance, int) and not isinstance(instance, bool)


_VALIDATOR: Any = validators.extend(  # type: ignore[no-untyped-call]  # jsonschema leaves extend untyped
    Draft202012Validator, validators={"pattern": _whole_pattern},
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer),
)


def _date(text: str, path: str, source: str) -> date:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise CatalogImportError(f"{source}: at {path}: {text!r} is not a real date; write YYYY-MM-DD") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise CatalogImportError(f"{source}: at {path}: {text!r} is outside the years "
                                 f"{FIRST_DAY.year}–{LAST_DAY.year}; check the date")
    return day


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


def _comparison(item: dict[str, Any], path: str, source: str) -> Comparison[str]:
    sides = tuple(_side(side, f"{path}.sides[{i}]", source) for i, side in enumerate(item["sides"]))
    if sides[0].tool == sides[1].tool:
        raise CatalogImportError(f"{source}: at {path}.sides: both sides are {sides[0].tool!r}; "
                                 "a comparison needs two different tools")
    published = _date(item["published"], f"{path}.published", source)
    return Comparison(item["slug"], item["title"], published, (sides[0], sides[1]))


def _side(item: dict[str, Any], path: str, source: str) -> Side[str]:
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
    tool: str = item["tool"]
    return Side(tool, verdict, votes, reviews)


def _review(item: dict[str, Any]) -> Review:
    verdict = item.get("verdict")
    return Review(item["persona"], item["text"], item.get("score"), None if verdict is None else verdict == "ship")


def dump_json(tools: list[Tool], comparisons: list[Comparison[str]]) -> str:
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


def _comparison_json(comparison: Comparison[str]) -> dict[str, Any]:
    return {
        "slug": comparison.slug, "title": comparison.title, "published": comparison.published.isoformat(),
        "sides": [_side_json(side) for side in comparison.sides],
    }


def _side_json(side: Side[str]) -> dict[str, Any]:
    panel: dict[str, Any] | None = None
    if side.verdict is not None:
        panel = {"percent": side.verdict.percent}
        if side.verdict.ship is not None:
            panel |= {"ship": side.verdict.ship, "size": side.verdict.size}
    community = None
    if side.community is not None:
        community = {"votes": side.community.votes, "ship_percent": side.community.ship_percent}
    reviews = [
        {"persona": r.persona, "text": r.text, "score": r.score,
         "verdict": None if r.ship is None else ("ship" if r.ship else "skip")}
        for r in side.reviews
    ]
    return {"tool": side.tool, "panel": panel, "community": community, "reviews": reviews}
