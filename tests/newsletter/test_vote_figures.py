"""Reader votes counted and set beside the panel (both databases): the upsert, the desk's standings and flag, the
recap that opens the next issue (only where enough readers voted, matching the recorded votes), the export."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from newsletter import issues, publishing, vote_figures, votes, wiring
from newsletter.catalog.importer import import_files
from newsletter.config import Settings
from newsletter.db import session_scope
from newsletter.values import Week
from tests.catalogs import many, write
from tests.newsletter.vote_support import DESIGN, WRITING, send_first_issue, stored_votes

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
LEDE = ("draftsmith-vs-lede", "lede")


def cast(engine: Engine, tool: tuple[str, str], choices: str, *, issue: int = 1, first: int = 1,
         now: datetime = NOW) -> None:
    """Readers ``first``, ``first + 1``… vote on ``tool``: ``choices`` is one letter each, ``s`` ship, ``k`` skip."""
    with session_scope(engine) as session:
        for offset, letter in enumerate(choices):
            votes.record(session, subscriber_id=first + offset, issue_number=issue, comparison=tool[0], tool=tool[1],
                         choice="ship" if letter == "s" else "skip", now=now)


def test_a_second_vote_replaces_the_first_and_counts_stay_per_tool(engine: Engine) -> None:
    cast(engine, DESIGN, "s")
    cast(engine, DESIGN, "k", issue=2)
    cast(engine, WRITING, "s")
    assert stored_votes(engine) == [(1, *DESIGN, "skip", 2), (1, *WRITING, "ship", 1)]
    with session_scope(engine) as session:
        counts = votes.tallies(session)
        with pytest.raises(ValueError, match="ship or skip"):
            votes.record(session, subscriber_id=1, issue_number=1, comparison=DESIGN[0], tool=DESIGN[1],
                         choice="maybe", now=NOW)  # type: ignore[arg-type]
    assert counts == {DESIGN: votes.Tally(1, 0), WRITING: votes.Tally(1, 1)}


def test_standings_put_the_panel_beside_the_readers_and_flag_wide_gaps(engine: Engine,
                                                                        make_settings: Callable[..., Settings],
                                                                        database_url: str) -> None:
    send_first_issue(engine, make_settings(database_url=database_url))
    cast(engine, DESIGN, "skks")  # Iconsmith: panel 75 % ship, readers 50 %
    cast(engine, WRITING, "kkkk", issue=7)  # Draftsmith: panel 50 %, readers 0 %, from another issue
    with session_scope(engine) as session:
        found = vote_figures.standings(session, [WRITING[0], DESIGN[0], "gone"], margin=25, issue_number=1)
        wide = vote_figures.standings(session, [WRITING[0]], margin=50)
        community = vote_figures.comparisons_by_slug(session, [DESIGN[0]])[DESIGN[0]]
    assert [s.slug for s in found] == [WRITING[0], DESIGN[0]]
    draftsmith, lede = found[0].tools
    assert (draftsmith.panel_percent, draftsmith.readers, draftsmith.from_issue, draftsmith.gap, draftsmith.flagged) \
        == (50, votes.Tally(4, 0), 0, -50, True)
    assert (lede.readers.votes, lede.gap, lede.flagged) == (0, None, False)  # nobody voted: nothing to flag
    iconsmith = found[1].tools[0]
    assert (iconsmith.panel_percent, iconsmith.readers.ship_percent, iconsmith.from_issue, iconsmith.flagged) == \
        (75, 50, 4, False)
    assert wide[0].tools[0].flagged is False  # 50 points is not more than a margin of 50
    side = community.sides[0]  # the imported Community figure: reader votes are never added to it
    assert side.community is not None and (side.community.votes, side.community.ship_percent) == (12, 58)


def test_the_next_issue_opens_with_a_recap_of_tools_enough_readers_voted_on(
        engine: Engine, make_settings: Callable[..., Settings], database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url=database_url, vote_recap_min_votes=3)
    send_first_issue(engine, settings)
    cast(engine, DESIGN, "sssk")  # 75 % ship: Ship, as the panel's 75 %
    cast(engine, LEDE, "sss", first=10)  # 100 % ship against the panel's 25 %: they disagree
    cast(engine, WRITING, "ss", first=20)  # two votes: too few to recap
    cast(engine, ("iconsmith-vs-huewise", "huewise"), "sssss", issue=9, first=30)  # not from issue 1
    week = Week(2026, 48)
    import_files(engine, [write(tmp_path / "next.json", many(2, week.monday))], published=week.monday)
    with wiring.build(settings) as wired:
        outcome = publishing.build_issue(engine, week=week, renderer=wired.renderer)
    assert outcome.number == 2
    with session_scope(engine) as session:
        email = issues.rendered_emails(session, issues.get_issue(session, 2))["all"]
    sentence = ("Last week you sided with the panel on Iconsmith; you disagreed on Lede: panel 25% ship, readers "
                "100% ship from 3 votes.")
    assert sentence in email.html and "Panel vs readers, issue 1" in email.html
    assert " ".join(email.text.split()).count(sentence) == 1
    assert "Draftsmith:" not in email.text and "Huewise" not in email.text


def test_no_recap_when_nothing_qualifies_or_nothing_was_sent(engine: Engine, make_settings: Callable[..., Settings],
                                                            database_url: str) -> None:
    with session_scope(engine) as session:
        assert vote_figures.recap(session, before=None, min_votes=1) is None  # no issue sent yet
    send_first_issue(engine, make_settings(database_url=database_url))
    cast(engine, DESIGN, "s" * 19)
    with session_scope(engine) as session:
        assert vote_figures.recap(session, before=None, min_votes=20) is None
        assert vote_figures.recap(session, before=1, min_votes=1) is None  # nothing was sent before issue 1
        found = vote_figures.recap(session, before=None, min_votes=19)
    assert found is not None and [(x.tool, x.readers_percent, x.votes, x.sided) for x in found.lines] == \
        [("Iconsmith", 100, 19, True)]


def test_the_export_counts_per_comparison_and_tool_and_honours_since(engine: Engine) -> None:
    cast(engine, DESIGN, "ssk", now=datetime(2026, 11, 20, tzinfo=UTC))
    cast(engine, WRITING, "k", now=datetime(2026, 11, 28, 23, 59, tzinfo=UTC))
    with session_scope(engine) as session:
        everything = vote_figures.export(session, now=NOW)
        recent = vote_figures.export(session, since=vote_figures.day_start("2026-11-28"), now=NOW)
    assert everything == {"generated_at": "2026-11-24T09:00:00Z", "since": None, "comparisons": [
        {"comparison": WRITING[0], "tools": [{"tool": "draftsmith", "votes": 1, "ship": 0, "ship_percent": 0}]},
        {"comparison": DESIGN[0], "tools": [{"tool": "iconsmith", "votes": 3, "ship": 2, "ship_percent": 67}]}]}
    assert recent["since"] == "2026-11-28T00:00:00Z" and [c["comparison"] for c in recent["comparisons"]] == [WRITING[0]]
    with pytest.raises(ValueError, match="2026-11-30"):
        vote_figures.day_start("28/11/2026")


def test_votes_on_a_comparison_the_catalog_no_longer_has_still_count(engine: Engine) -> None:
    cast(engine, ("retired-vs-gone", "retired"), "sk")
    with session_scope(engine) as session:
        assert votes.tallies(session) == {("retired-vs-gone", "retired"): votes.Tally(2, 1)}
        assert vote_figures.standings(session, ["retired-vs-gone"], margin=10) == []
