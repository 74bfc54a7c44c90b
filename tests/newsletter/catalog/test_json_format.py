"""The JSON import format: schema errors name file, JSON path and fix."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from newsletter.catalog.json_format import FORMAT, dump_json, parse_json
from newsletter.errors import CatalogImportError

DEMO = Path(__file__).resolve().parents[3] / "newsletter" / "demo_catalog.json"


def minimal() -> dict[str, Any]:
    tool = {"slug": "alpha", "name": "Alpha", "tagline": "t", "description": "d", "category": "Writing",
            "pricing_tier": "Free", "pricing_note": None, "published": "2026-11-16"}
    review = {"persona": "Builder", "text": "Good.", "score": 70, "verdict": "ship"}
    side = {"tool": "alpha", "panel": {"percent": 100, "ship": 1, "size": 1}, "community": None, "reviews": [review]}
    return {"format": FORMAT, "tools": [tool, tool | {"slug": "beta", "name": "Beta"}],
            "comparisons": [{"slug": "alpha-vs-beta", "title": "Alpha vs Beta", "published": "2026-11-18",
                             "sides": [side, side | {"tool": "beta"}]}]}


def error_for(document: dict[str, Any]) -> str:
    with pytest.raises(CatalogImportError) as caught:
        parse_json(json.dumps(document), source="cat.json")
    return str(caught.value)


def test_a_valid_document_parses() -> None:
    batch = parse_json(json.dumps(minimal()), source="cat.json")
    assert [t.slug for t in batch.tools] == ["alpha", "beta"]
    assert batch.comparisons[0].sides[0].verdict.split == "1 ship / 0 skip"
    assert batch.comparisons[0].sides[0].reviews[0].ship is True


def test_missing_field_names_path_and_fix() -> None:
    document = minimal()
    del document["tools"][1]["tagline"]
    message = error_for(document)
    assert message.startswith("cat.json: at $.tools[1]: 'tagline' is a required property; add the missing field")


def test_bad_enum_and_bad_slug_are_both_reported() -> None:
    document = minimal()
    document["tools"][0]["pricing_tier"] = "Freemium"
    document["comparisons"][0]["slug"] = "Alpha vs Beta"
    message = error_for(document)
    assert "$.tools[0].pricing_tier" in message and "use one of the listed values" in message
    assert "$.comparisons[0].slug" in message and "slugs are lowercase" in message


def test_impossible_date_panel_and_duplicates() -> None:
    bad_date = minimal()
    bad_date["tools"][0]["published"] = "2026-02-30"
    assert "at $.tools[0].published: '2026-02-30' is not a real date" in error_for(bad_date)
    bad_panel = minimal()
    bad_panel["comparisons"][0]["sides"][0]["panel"] = {"percent": 50, "ship": 3, "size": 4}
    assert "$.comparisons[0].sides[0].panel: panel percent 50 does not match" in error_for(bad_panel)
    twice = minimal()
    twice["tools"][1]["slug"] = "alpha"
    assert "'alpha' appears twice" in error_for(twice)
    same = minimal()
    same["comparisons"][0]["sides"][1]["tool"] = "alpha"
    assert "needs two different tools" in error_for(same)
    repeated = minimal()
    repeated["comparisons"][0]["sides"][0]["reviews"] *= 2
    assert "a persona reviews this tool twice" in error_for(repeated)


def test_syntax_error_gives_line_and_column() -> None:
    with pytest.raises(CatalogImportError, match=r"cat.json: line 1 column \d+"):
        parse_json('{"format": ', source="cat.json")


def test_dump_then_parse_is_lossless_for_the_demo_catalog() -> None:
    text = DEMO.read_text(encoding="utf-8")
    batch = parse_json(text, source="demo")
    again = dump_json(list(batch.tools), list(batch.comparisons))
    assert json.loads(again) == json.loads(text)
    assert parse_json(again, source="again") == parse_json(again, source="again")
    original = copy.deepcopy(json.loads(text))
    assert original["format"] == FORMAT


def test_deep_nesting_is_refused_with_a_clear_error() -> None:
    deep = json.dumps(minimal())[:-1] + ', "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    with pytest.raises(CatalogImportError, match=r"cat\.json: .*nest"):
        parse_json(deep, source="cat.json")
    document = minimal()
    nested: Any = "x"
    for _ in range(200):
        nested = [nested]
    document["tools"][0]["pricing_note"] = nested
    assert "$.tools[0].pricing_note" in error_for(document)


@pytest.mark.parametrize(("value", "says"), [
    ("Bad\ud800", "U+D800"),
    ("Bad\x00", "U+0000"),
    ("Bad\x0b", "U+000B"),
    ("Bad\x0c", "U+000C"),
    ("Bad\x1b[31m", "U+001B"),
    ("Bad\x85", "U+0085"),
    ("Bad\ufffe", "U+FFFE"),
    ("Bad\U0001ffff", "U+1FFFF"),
    ("Bad\nname", "U+000A"),
])
def test_control_characters_surrogates_and_noncharacters_are_refused_by_field(value: str, says: str) -> None:
    document = minimal()
    document["tools"][1]["name"] = value
    message = error_for(document)
    assert message.startswith("cat.json: at $.tools[1].name: ") and says in message
    assert "remove" in message


def test_descriptions_and_review_texts_may_hold_tabs_and_newlines() -> None:
    document = minimal()
    document["tools"][0]["description"] = "One.\n\nTwo,\tthree."
    document["comparisons"][0]["sides"][0]["reviews"][0]["text"] = "Line one.\nLine two."
    batch = parse_json(json.dumps(document), source="cat.json")
    assert batch.tools[0].description == "One.\n\nTwo,\tthree."
    document["comparisons"][0]["sides"][1]["reviews"][0]["text"] = "Bell\x07"
    assert "at $.comparisons[0].sides[1].reviews[0].text: " in error_for(document)


@pytest.mark.parametrize("path", [("tools", 0, "slug"), ("comparisons", 0, "slug"), ("tools", 0, "published"),
                                  ("tools", 0, "category"), ("comparisons", 0, "sides", 0, "tool")])
def test_patterns_match_the_whole_value_not_up_to_a_trailing_newline(path: tuple[Any, ...]) -> None:
    document = minimal()
    parent: Any = document
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] += "\n"
    message = error_for(document)
    assert "at $." + ".".join(str(k) for k in path).replace(".0", "[0]") in message


@pytest.mark.parametrize("number", ["10000000000000000000", "2147483648", "-10000000000000000000",
                                    "9" * 5000, "1e300", "1e400", "70.0", "true"])
def test_numbers_outside_what_can_be_stored_are_refused_by_path(number: str) -> None:
    document = minimal()
    document["comparisons"][0]["sides"][0]["community"] = {"votes": 0, "ship_percent": None}
    text = json.dumps(document).replace('"votes": 0', f'"votes": {number}')
    message = error_for_text(text)
    assert message.startswith("cat.json: at $.comparisons[0].sides[0].community.votes: "), message
    assert len(message) < 600


def error_for_text(text: str) -> str:
    with pytest.raises(CatalogImportError) as caught:
        parse_json(text, source="cat.json")
    return str(caught.value)


def test_a_utf8_byte_order_mark_is_accepted() -> None:
    batch = parse_json("\ufeff" + json.dumps(minimal()), source="cat.json")
    assert [t.slug for t in batch.tools] == ["alpha", "beta"]


def test_dates_outside_the_calendar_the_issue_weeks_cover_are_refused() -> None:
    document = minimal()
    document["comparisons"][0]["published"] = "9999-12-31"
    assert "at $.comparisons[0].published: " in error_for(document)
