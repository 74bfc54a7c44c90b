"""build_digest and narrow: selection, order, wording; pure, no database."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date

from newsletter.digest import build_digest, call, cases, decision, narrow, shorten
from newsletter.values import Cohort, Comparison, PanelVerdict, Review, Side, Tool, Week

WEEK = Week(2026, 47)  # Mon 16 – Sun 22 November 2026
SITE = "https://site.example.com/compare/"


def test_quiet_week_builds_nothing(make_comparison: Callable[..., Comparison], make_tool: Callable[..., Tool]) -> None:
    old = make_comparison(make_tool(name="A", published=date(2026, 11, 2)), make_tool(name="B", published=date(2026, 11, 2)),
                          published=date(2026, 11, 3))
    assert build_digest([old], week=WEEK, site_url=SITE) is None
    assert build_digest([], week=WEEK, site_url=SITE) is None


def test_selects_this_weeks_comparisons_and_older_ones_with_a_new_tool(
    make_comparison: Callable[..., Comparison], make_tool: Callable[..., Tool]
) -> None:
    veteran = make_tool(name="Veteran", published=date(2026, 10, 1))
    rookie = make_tool(name="Rookie", published=date(2026, 11, 17))
    this_week = make_comparison(veteran, make_tool(name="Old Two", published=date(2026, 10, 1)), published=date(2026, 11, 19))
    with_new = make_comparison(rookie, make_tool(name="Old Three", published=date(2026, 10, 1)), published=date(2026, 11, 14))
    next_week = make_comparison(make_tool(name="Future", published=date(2026, 11, 23)), veteran, published=date(2026, 11, 24))
    last_week = make_comparison(veteran, make_tool(name="Old Four", published=date(2026, 10, 1)), published=date(2026, 11, 10))
    digest = build_digest([this_week, with_new, next_week, last_week], week=WEEK, site_url=SITE)
    assert digest is not None
    assert {e.slug for e in digest.entries} == {this_week.slug, with_new.slug}
    assert digest.new_tools == ("Rookie",)
    assert digest.entries[0].slug == with_new.slug  # the news leads


def test_order_new_tools_then_clearest_call_then_newest(
    make_comparison: Callable[..., Comparison], make_tool: Callable[..., Tool]
) -> None:
    def old(name: str) -> Tool:
        return make_tool(name=name, published=date(2026, 9, 1))

    close = make_comparison(old("C1"), old("C2"), ships=(2, 2), published=date(2026, 11, 20))
    clear = make_comparison(old("D1"), old("D2"), ships=(4, 0), published=date(2026, 11, 17))
    clear_newer = make_comparison(old("E1"), old("E2"), ships=(0, 4), published=date(2026, 11, 18))
    two_new = make_comparison(make_tool(name="N1", published=date(2026, 11, 16)),
                              make_tool(name="N2", published=date(2026, 11, 16)), ships=(2, 2), published=date(2026, 11, 16))
    digest = build_digest([close, clear, clear_newer, two_new], week=WEEK, site_url=SITE)
    assert digest is not None
    assert [e.slug for e in digest.entries] == [two_new.slug, clear_newer.slug, clear.slug, close.slug]


def test_limit_keeps_the_lead_and_subject_counts_the_rest(make_comparison: Callable[..., Comparison],
                                                          make_tool: Callable[..., Tool]) -> None:
    comparisons = [make_comparison(make_tool(name=f"X{i}"), make_tool(name=f"Y{i}"), ships=(4, i % 4)) for i in range(10)]
    digest = build_digest(comparisons, week=WEEK, site_url=SITE, limit=8)
    assert digest is not None and len(digest.entries) == 8
    assert digest.subject == f"{digest.entries[0].title}, and 7 more verdicts"
    assert digest.preheader.startswith("16 new tools this week. The panel favours")  # the 8 shown
    single = build_digest(comparisons[:1], week=WEEK, site_url=SITE)
    assert single is not None and single.subject == f"This week's verdict: {single.entries[0].title}"


def test_entry_shows_verdicts_bars_quote_and_link(make_comparison: Callable[..., Comparison]) -> None:
    comparison = make_comparison(ships=(3, 1), scores=((90, 70, 65, 40), (55, 45, 30, 62)))
    digest = build_digest([comparison], week=WEEK, site_url=SITE)
    assert digest is not None
    entry = digest.entries[0]
    assert entry.url == SITE + comparison.slug
    alpha = entry.tools[0]
    assert alpha.verdict is not None and alpha.verdict.split == "3 ship / 1 skip"
    assert [b.score for b in alpha.bars] == [90, 70, 65, 40]
    assert entry.ship_case is not None and entry.skip_case is not None
    assert (entry.ship_case.tool, entry.ship_case.review.persona, entry.ship_case.review.score) == ("Alpha", "Builder", 90)
    assert (entry.skip_case.tool, entry.skip_case.review.persona, entry.skip_case.review.score) == ("Beta", "Futurist", 30)
    assert entry.decision == "The panel favours Alpha: 75% ship against 25% for Beta."
    assert entry.call == "Alpha leads, 75% to 25% ship"


def test_decision_on_a_tie_says_where_it_splits(make_comparison: Callable[..., Comparison]) -> None:
    leaning = make_comparison(ships=(2, 2), scores=((80, 75, 50, 45), (62, 40, 55, 30)))
    assert decision(leaning.sides) == "A split decision: both at 50% ship, but the scores lean to Alpha (62 against 47)."
    level = make_comparison(ships=(2, 2), scores=((70, 70, 40, 40), (70, 70, 40, 40)))
    assert decision(level.sides).endswith("read both cases before you choose.")


def test_quote_is_cut_at_a_sentence_boundary() -> None:
    text = "First sentence is short. " + "Second sentence is rather long " * 8 + "end. Third."
    assert shorten(text) == "First sentence is short."
    endless = "word " * 100
    cut = shorten(endless)
    assert cut.endswith("…") and len(cut) <= 241


def test_cases_show_the_counter_case_when_the_builder_always_scores_highest(
    make_comparison: Callable[..., Comparison], make_tool: Callable[..., Tool]
) -> None:
    # The panel as the site publishes it most weeks: the Builder on top for every tool, whatever the call.
    panels = [((92, 64, 71, 45), (88, 41, 55, 38)), ((85, 58, 40, 62), (90, 35, 52, 48)),
              ((95, 80, 75, 70), (81, 44, 30, 61)), ((78, 52, 47, 66), (83, 49, 45, 57))]
    comparisons = [make_comparison(make_tool(name=f"P{i}"), make_tool(name=f"Q{i}"), scores=scores)
                   for i, scores in enumerate(panels)]
    digest = build_digest(comparisons, week=WEEK, site_url=SITE)
    assert digest is not None
    for entry in digest.entries:
        ship, skip = entry.ship_case, entry.skip_case
        assert ship is not None and skip is not None
        assert ship.review.persona == "Builder" and ship.review.ship is True
        assert skip.review.persona != "Builder" and skip.review.ship is False
        everything = [(t.name, b) for t in entry.tools for b in t.bars]
        assert ship.review.score == max(b.score for _, b in everything if b.ship)
        assert skip.review.score == min(b.score for _, b in everything if b.ship is False)
    lowest = next(e for e in digest.entries if e.slug == comparisons[2].slug).skip_case
    assert lowest is not None and (lowest.tool, lowest.review.persona, lowest.review.score) == ("Q2", "Futurist", 30)


def test_a_verdict_outranks_its_score_and_ties_go_to_the_panels_side(make_comparison: Callable[..., Comparison]) -> None:
    comparison = make_comparison(ships=(3, 1), scores=((70, 70, 70, 40), (70, 40, 40, 40)))
    ship, skip = cases(comparison.sides)
    assert ship is not None and (ship.tool, ship.review.persona) == ("Alpha", "Builder")  # favoured side first
    assert skip is not None and (skip.tool, skip.review.persona) == ("Beta", "Skeptic")  # disfavoured side first
    alpha, beta = comparison.sides
    hedged = replace(alpha, reviews=(Review("Skeptic", "Fine, but no.", 58, False),))
    ship, skip = cases((hedged, replace(beta, reviews=(Review("Builder", "Yes.", 45, True),))))
    assert ship is not None and ship.review.score == 45  # the page said ship, whatever the number
    assert skip is not None and skip.review.score == 58


def test_without_scores_the_builder_argues_for_and_the_skeptic_against(make_tool: Callable[..., Tool]) -> None:
    def side(name: str, percent: int) -> Side:
        reviews = tuple(Review(p, f"{p} on {name}.") for p in ("Builder", "Skeptic", "Futurist", "Founder"))
        return Side(make_tool(name=name), PanelVerdict(percent, "Ship" if percent > 50 else "Skip"), None, reviews)

    ship, skip = cases((side("Lede", 25), side("Draftsmith", 75)))
    assert ship is not None and (ship.tool, ship.review.persona, ship.review.score) == ("Draftsmith", "Builder", None)
    assert skip is not None and (skip.tool, skip.review.persona) == ("Lede", "Skeptic")


def test_a_unanimous_panel_has_no_case_for_skipping(make_comparison: Callable[..., Comparison]) -> None:
    ship, skip = cases(make_comparison(ships=(4, 4), scores=((80, 75, 70, 65), (90, 60, 61, 62))).sides)
    assert ship is not None and (ship.tool, ship.review.score) == ("Beta", 90)
    assert skip is None
    long = Review("Builder", "First sentence is short. " + "Then a long one " * 20 + "end.", 90, True)
    only, _ = cases((replace(make_comparison().sides[0], reviews=(long,)), make_comparison().sides[1]))
    assert only is not None and only.review.text == "First sentence is short."


def test_call_names_the_leader_or_the_split(make_comparison: Callable[..., Comparison]) -> None:
    assert call(make_comparison(ships=(1, 3)).sides) == "Beta leads, 75% to 25% ship"
    assert call(make_comparison(ships=(2, 2)).sides) == "Split: both at 50% ship"
    alpha, beta = make_comparison().sides
    assert call((alpha, replace(beta, verdict=None))) == "Only Alpha has a verdict: 75% ship"
    assert call((replace(alpha, verdict=None), replace(beta, verdict=None))) == "No panel verdict yet"


def test_narrow_by_category_and_free_only(make_comparison: Callable[..., Comparison], make_tool: Callable[..., Tool]) -> None:
    writing = make_comparison(make_tool(name="W1", category="Writing"), make_tool(name="W2", category="Writing", pricing_tier="Free"))
    design = make_comparison(make_tool(name="D1", category="Design"), make_tool(name="D2", category="Design"), ships=(4, 0))
    digest = build_digest([writing, design], week=WEEK, site_url=SITE)
    assert digest is not None
    assert narrow(digest, Cohort()) is digest
    only_writing = narrow(digest, Cohort(frozenset({"Writing"})))
    assert only_writing is not None and [e.slug for e in only_writing.entries] == [writing.slug]
    assert only_writing.subject == "This week's verdict: W1 vs W2"
    free = narrow(digest, Cohort(free_only=True))
    assert free is not None and [e.slug for e in free.entries] == [writing.slug]
    assert narrow(digest, Cohort(frozenset({"Design"}), free_only=True)) is None
    assert narrow(digest, Cohort(frozenset({"Audio"}))) is None


def test_week_values() -> None:
    assert Week.parse("2026-W47") == WEEK
    assert str(Week.containing(date(2027, 1, 1))) == "2026-W53"
    assert WEEK.monday == date(2026, 11, 16) and WEEK.sunday == date(2026, 11, 22)
    for bad in ("2026-47", "2026-W54x", "2025-W53"):
        try:
            Week.parse(bad)
        except ValueError as exc:
            assert "2026-W47" in str(exc) or "has no week" in str(exc)
        else:
            raise AssertionError(f"{bad} parsed")
    assert Cohort.from_key(Cohort(frozenset({"B", "A"}), True).key) == Cohort(frozenset({"A", "B"}), True)
