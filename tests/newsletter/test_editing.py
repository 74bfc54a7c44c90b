"""An editor's arrangement, note and headers applied to a digest (pure)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date

import pytest

from newsletter.digest import build_digest
from newsletter.editing import Arrangement, Edits, clean_header, clean_note, note_html, note_text
from newsletter.errors import IssueError
from newsletter.values import Cohort, Comparison, Digest, Tool, Week

WEEK = Week(2026, 47)


@pytest.fixture
def pool(make_comparison: Callable[..., Comparison], make_tool: Callable[..., Tool]) -> Digest:
    comparisons = [make_comparison(make_tool(name=f"A{i}"), make_tool(name=f"B{i}"), published=date(2026, 11, 16 + i))
                   for i in range(5)]
    digest = build_digest(comparisons, week=WEEK, site_url="https://site.example.com/", limit=100)
    assert digest is not None
    return digest


def slugs(digest: Digest) -> list[str]:
    return [e.slug for e in digest.entries]


def test_without_edits_the_digest_order_and_limit_stand(pool: Digest) -> None:
    assert slugs(Edits().digest(pool, 3)) == slugs(pool)[:3]


def test_pinned_come_first_and_stay_past_the_limit_dropped_never_show(pool: Digest) -> None:
    order = slugs(pool)
    arrangement = Arrangement(pinned=frozenset({order[4]}), dropped=frozenset({order[0]}))
    assert slugs(Edits(arrangement).digest(pool, 2)) == [order[4], order[1]]


def test_moves_swap_neighbours_and_stop_at_the_ends(pool: Digest) -> None:
    shown = tuple(slugs(pool))
    down = Arrangement().moved(shown, shown[0], "down")
    assert slugs(Edits(down).digest(pool, 5))[:2] == [shown[1], shown[0]]
    top = Arrangement().moved(shown, shown[0], "up")
    assert slugs(Edits(top).digest(pool, 5)) == list(shown)
    with pytest.raises(IssueError, match="not in this issue"):
        Arrangement().moved(shown, "elsewhere", "up")


def test_the_arrangement_survives_its_stored_form(pool: Digest) -> None:
    arrangement = Arrangement(("a2-vs-b2", "a1-vs-b1"), frozenset({"a3-vs-b3"}), frozenset({"a0-vs-b0"}))
    assert Arrangement.parse(arrangement.dumps()) == arrangement
    assert Arrangement.parse("") == Arrangement()


def test_dropping_everything_is_refused(pool: Digest) -> None:
    with pytest.raises(IssueError, match="restore at least one"):
        Edits(Arrangement(dropped=frozenset(slugs(pool)))).digest(pool, 8)


def test_subject_and_preheader_overrides_reach_every_cohort(pool: Digest) -> None:
    edits = Edits(subject="Five verdicts", preheader="Read them before Friday")
    digest = edits.digest(pool, 8)
    narrowed = edits.for_cohort(digest, Cohort(frozenset({"Developer Tools"})))
    assert narrowed is not None
    assert (digest.subject, narrowed.subject, narrowed.preheader) == (
        "Five verdicts", "Five verdicts", "Read them before Friday")
    assert replace(edits, subject=None).digest(pool, 8).subject == pool.subject


def test_notes_are_safe_html_and_readable_text() -> None:
    note = "**Big** week: [method](https://site.example.com/m) <img src=x onerror=alert(1)> [bad](javascript:alert(1))"
    html = note_html(note)
    assert "<strong>Big</strong>" in html and '<a href="https://site.example.com/m">method</a>' in html
    assert "<img" not in html and "&lt;img" in html and 'href="javascript' not in html
    assert note_text("**Big** week: [method](https://site.example.com/m)") == "Big week: method (https://site.example.com/m)"
    assert note_html("") == ""


def test_notes_and_headers_are_trimmed_and_bounded() -> None:
    assert clean_note("  hello\r\nworld  ") == "hello\nworld"
    with pytest.raises(IssueError, match="keep it under 5000"):
        clean_note("x" * 5001)
    assert clean_header("  Two   verdicts \n", name="subject", limit=300) == "Two verdicts"
    assert clean_header("   ", name="subject", limit=300) is None
    with pytest.raises(IssueError, match="subject is 301 characters"):
        clean_header("x" * 301, name="subject", limit=300)
