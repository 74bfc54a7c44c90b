"""Comparison pages as the site publishes them: both layouts, the seeds and pages of our own."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from newsletter.catalog.comparison_page import parse_community, parse_page, slugify
from newsletter.errors import CatalogImportError
from newsletter.values import PERSONAS, CommunityVotes
from tests.conftest import FIXTURE_PAGES, seed_pages

DAY = date(2026, 11, 20)


def parse(path: Path):
    return parse_page(path.read_text(encoding="utf-8"), source=path.name, published=DAY)


@pytest.mark.parametrize("path", seed_pages() + sorted(FIXTURE_PAGES.glob("*.txt")), ids=lambda p: p.name)
def test_every_page_yields_two_tools_and_a_full_panel(path: Path) -> None:
    batch = parse(path)
    (comparison,) = batch.comparisons
    assert comparison.slug == path.stem
    assert [t.slug for t in batch.tools] == [s.tool for s in comparison.sides]
    assert comparison.title == f"{batch.tools[0].name} vs {batch.tools[1].name}"
    for tool in batch.tools:
        assert tool.tagline and tool.description and tool.category
        assert tool.pricing_tier in ("Free", "Paid")
        assert tool.published == DAY
    for side in comparison.sides:
        assert [r.persona for r in side.reviews] == list(PERSONAS)
        assert all(len(r.text) > 40 for r in side.reviews)
        assert side.verdict is not None
    assert comparison.sides[0].reviews[0].text != comparison.sides[1].reviews[0].text


def test_scored_layout_reads_scores_split_notes_and_votes() -> None:
    batch = parse(FIXTURE_PAGES / "iconsmith-vs-huewise.txt")
    icons, hues = batch.comparisons[0].sides
    assert (icons.verdict.percent, icons.verdict.label, icons.verdict.split) == (75, "Ship", "3 ship / 1 skip")
    assert (hues.verdict.percent, hues.verdict.label, hues.verdict.split) == (25, "Skip", "1 ship / 3 skip")
    assert icons.community == CommunityVotes(12, 58)
    assert hues.community is None
    assert [(r.persona, r.score, r.ship) for r in icons.reviews][:2] == [("Builder", 81, True), ("Skeptic", 57, False)]
    assert hues.reviews[3].text.startswith("Free and open source")
    assert batch.tools[0].pricing_note == "Free up to 50 icons a month"


def test_compact_layout_takes_quotes_in_panel_order() -> None:
    batch = parse(FIXTURE_PAGES / "draftsmith-vs-lede.txt")
    draft, lede = batch.comparisons[0].sides
    assert draft.reviews[0].text.startswith("The primitive is a style model")
    assert lede.reviews[1].text.startswith("Competitors are the CMS vendors")
    assert draft.reviews[3].persona == "Founder" and draft.reviews[3].text.startswith("The buyer")
    assert all(r.score is None and r.ship is None for r in draft.reviews)
    assert (draft.verdict.percent, draft.verdict.label, draft.verdict.split) == (50, "Mixed", None)


def test_seed_pages_agree_with_each_other() -> None:
    """A tool reviewed on several pages, in either layout and in either quote order, gets each text under one persona.

    The project's own set has Scribeline on three pages (one scored, two compact, one of those listing Founder
    before Futurist); ../shared/seeds, when present, adds Mistral 3 Small on three more.
    """
    by_tool: dict[str, dict[str, set[str]]] = {}
    pages: dict[str, int] = {}
    for path in seed_pages():
        for side in parse(path).comparisons[0].sides:
            pages[side.tool] = pages.get(side.tool, 0) + 1
            for review in side.reviews:
                by_tool.setdefault(side.tool, {}).setdefault(review.persona, set()).add(review.text)
    shared = [slug for slug, count in pages.items() if count == 3]
    assert "scribeline" in shared
    for slug in shared:
        assert set(by_tool[slug]) == set(PERSONAS)
        assert all(len(texts) == 1 for texts in by_tool[slug].values()), by_tool[slug]


@pytest.mark.parametrize(("remove", "message"), [
    ("Reviewer scorecard", "'Reviewer scorecard' section is missing"),
    ("Panel ship", "expected two tool blocks"),
    ("Entry", "pricing tier and 'Entry'"),
])
def test_a_missing_part_is_named(remove: str, message: str) -> None:
    text = (FIXTURE_PAGES / "draftsmith-vs-lede.txt").read_text()
    broken = "\n".join(line for line in text.splitlines() if line != remove)
    with pytest.raises(CatalogImportError, match=message) as caught:
        parse_page(broken, source="broken.txt", published=DAY)
    assert str(caught.value).startswith("broken.txt: ")


def test_a_missing_quote_is_counted() -> None:
    text = (FIXTURE_PAGES / "draftsmith-vs-lede.txt").read_text()
    lines = text.splitlines()
    first_quote = next(i for i, line in enumerate(lines) if line.startswith("“"))
    del lines[first_quote]
    with pytest.raises(CatalogImportError, match="holds 7 quotes; it needs 8"):
        parse_page("\n".join(lines), source="short.txt", published=DAY)


def test_contradictory_label_is_refused() -> None:
    text = (FIXTURE_PAGES / "iconsmith-vs-huewise.txt").read_text().replace("Ship · 3 ship / 1 skip", "Ship · 1 ship / 3 skip")
    with pytest.raises(CatalogImportError, match="does not match the split"):
        parse_page(text, source="bad.txt", published=DAY)


def test_title_must_name_the_tools() -> None:
    text = (FIXTURE_PAGES / "draftsmith-vs-lede.txt").read_text().replace("Draftsmith vs Lede", "Foo vs Bar")
    with pytest.raises(CatalogImportError, match="does not name the two tools"):
        parse_page(text, source="bad.txt", published=DAY)


def test_slugs_and_community_figures() -> None:
    assert slugify("Mistral Medium 3.2") == "mistral-medium-3-2"
    assert slugify("Claude 4 Opus API") == "claude-4-opus-api"
    assert parse_community("—") is None
    assert parse_community("No community votes yet") is None
    assert parse_community("1,204 votes") == CommunityVotes(1204, None)


def test_a_review_without_text_is_refused_naming_persona_and_tool() -> None:
    text = (FIXTURE_PAGES / "iconsmith-vs-huewise.txt").read_text()
    lines = text.splitlines()
    skeptic = lines.index("Skeptic")
    score = next(i for i in range(skeptic + 1, len(lines)) if "/100" in lines[i])
    following = next(i for i in range(score + 1, len(lines)) if lines[i].strip())
    del lines[following]  # the Skeptic's review of Iconsmith loses its text; its score line stays
    with pytest.raises(CatalogImportError) as caught:
        parse_page("\n".join(lines), source="bad.txt", published=DAY)
    message = str(caught.value)
    assert message.startswith("bad.txt: ") and "Skeptic" in message and "Iconsmith" in message, message


def test_an_empty_quote_is_refused_naming_persona_and_tool() -> None:
    text = (FIXTURE_PAGES / "draftsmith-vs-lede.txt").read_text()
    lines = text.splitlines()
    quotes = [i for i, line in enumerate(lines) if line.startswith("“")]
    lines[quotes[3]] = "“ ”"  # the second tool's Skeptic quote
    with pytest.raises(CatalogImportError, match=r"the Skeptic review of 'Lede' has no text"):
        parse_page("\n".join(lines), source="bad.txt", published=DAY)


@pytest.mark.parametrize("char", ["\x00", "\x0b", "\x0c", "\x1b", "\x85", "\ufffe", "\ud800", "\u2028"])
def test_control_characters_are_refused_with_their_line(char: str) -> None:
    text = (FIXTURE_PAGES / "draftsmith-vs-lede.txt").read_text()
    lines = text.splitlines()
    at = lines.index("Draftsmith")
    lines[at] = f"Draft{char}smith"
    with pytest.raises(CatalogImportError) as caught:
        parse_page("\n".join(lines), source="bad.txt", published=DAY)
    assert str(caught.value).startswith(f"bad.txt: line {at + 1} ('Draft"), caught.value
    assert f"U+{ord(char):04X}" in str(caught.value)


def test_a_byte_order_mark_tabs_and_carriage_returns_are_accepted() -> None:
    text = (FIXTURE_PAGES / "draftsmith-vs-lede.txt").read_text()
    plain = parse_page(text, source="p.txt", published=DAY)
    odd = "\ufeff" + text.replace("\n", "\r").replace("Draftsmith vs Lede", "Draftsmith\tvs Lede")
    assert parse_page(odd, source="p.txt", published=DAY) == parse_page(
        text.replace("Draftsmith vs Lede", "Draftsmith vs Lede"), source="p.txt", published=DAY) == plain


def test_what_the_json_format_forbids_is_refused_on_a_page_too() -> None:
    text = (FIXTURE_PAGES / "draftsmith-vs-lede.txt").read_text()
    long_name = "Draftsmith" + "x" * 300
    with pytest.raises(CatalogImportError, match=r"at \$\.tools\[0\]\.name: .* is too long"):
        parse_page(text.replace("Draftsmith", long_name), source="bad.txt", published=DAY)
    first_category = text.splitlines()[text.splitlines().index("Draftsmith") - 1]
    with pytest.raises(CatalogImportError, match=r"categories have no commas"):
        parse_page(text.replace(f"\n{first_category}\n", f"\n{first_category}, Art\n", 1), source="bad.txt",
                   published=DAY)


def test_a_split_of_nobody_is_refused() -> None:
    text = (FIXTURE_PAGES / "iconsmith-vs-huewise.txt").read_text().replace("Ship · 3 ship / 1 skip", "Ship · 0 ship / 0 skip")
    text = text.replace("\n75%\n", "\n—\n")
    with pytest.raises(CatalogImportError, match="counts no reviewer"):
        parse_page(text, source="bad.txt", published=DAY)
