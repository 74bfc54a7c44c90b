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
    assert batch.comparisons[0].sides[0].panel.split == "1 ship / 0 skip"
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
