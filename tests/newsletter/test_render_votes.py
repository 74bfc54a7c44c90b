"""Vote links and the recap in the digest: one per-recipient value per link, Gmail's clip size kept, the text twin's
lines, the recap only where it has lines, previews and the web version without reader links."""

from __future__ import annotations

import re
from dataclasses import replace

from newsletter.digest import narrow
from newsletter.dispatch import Envelope, personalise
from newsletter.render import PreparedEmail, make_environment, render_cohort, without_votes
from newsletter.values import Cohort, Digest, Recap, RecapLine, Recipient
from newsletter.votes import PREVIEW_VOTER
from tests.newsletter.test_render import CONTEXT, LINKS, eight, too_long

__all__ = ["eight"]  # the fixture, shared with test_render
VOTES = replace(CONTEXT, vote_url="https://newsletter.verdicts-publisher.example.com/vote")
TOKEN = "WzEyMzQ1Njc4LDEyMzRd." + "V" * 43  # as long as a real voter token for a big list
RECAP = Recap(6, (
    RecapLine("Alpha vs Beta", "Alpha", 75, 80, 40, True, frozenset({"Writing"}), False),
    RecapLine("Alpha vs Beta", "Beta", 75, 31, 212, False, frozenset({"Writing"}), False),
    RecapLine("Gamma vs Delta", "Gamma", 25, 20, 25, True, frozenset({"Design"}), True),
))


def test_every_tool_gets_ship_and_skip_links_with_the_voter_token_as_the_one_personal_value(eight: Digest) -> None:
    rendered = render_cohort(eight, Cohort(), env=make_environment(), context=VOTES)
    for entry in eight.entries:
        for tool in entry.tools:
            for choice in ("ship", "skip"):
                link = f"{VOTES.vote_url}/{entry.slug}/{tool.slug}/{choice}/%%{{voter}}%%"
                assert rendered.html.count(f'href="{link}"') == 1 and rendered.text.count(link) == 1
    assert rendered.html.count('class="your-call"') == 16
    assert set(re.findall(r"%%\{([a-z_]+)\}%%", rendered.html)) == {"voter", "unsubscribe_url", "preferences_url",
                                                                    "web_url"}


def test_eight_comparisons_with_vote_links_stay_well_under_gmails_clip(eight: Digest) -> None:
    plain = render_cohort(eight, Cohort(), env=make_environment(), context=CONTEXT)
    voting = render_cohort(eight, Cohort(), env=make_environment(), context=replace(VOTES, recap=RECAP))
    filled = PreparedEmail.of(voting).html.fill(LINKS | {"voter": TOKEN})
    size = len(filled.encode())
    assert size < 90_000, size  # Gmail clips at ~102 KB; the vote links cost ~9 KB for sixteen tools
    assert len(voting.html.encode()) - len(plain.html.encode()) < 11_000


def test_text_twin_votes_on_lines_of_their_own(eight: Digest) -> None:
    cohort = Cohort(frozenset({"Writing"}))
    narrowed = narrow(eight, cohort)
    assert narrowed is not None
    text = PreparedEmail.of(render_cohort(narrowed, cohort, env=make_environment(),
                                          context=replace(VOTES, recap=RECAP))).text.fill(LINKS | {"voter": TOKEN})
    entry, tool = narrowed.entries[0], narrowed.entries[0].tools[0]
    assert (f"  Your call on {tool.name}, Ship:\n  {VOTES.vote_url}/{entry.slug}/{tool.slug}/ship/{TOKEN}\n"
            f"  or Skip:\n  {VOTES.vote_url}/{entry.slug}/{tool.slug}/skip/{TOKEN}\n") in text
    assert too_long(text) == [], too_long(text)


def test_the_recap_opens_the_issue_with_the_lines_each_cohort_asks_for(eight: Digest) -> None:
    sentence = ("Last week you sided with the panel on Alpha; you disagreed on Beta: panel 75% ship, readers 31% "
                "ship from 212 votes.")
    writing = Cohort(frozenset({"Writing"}))
    narrowed = narrow(eight, writing)
    assert narrowed is not None
    rendered = render_cohort(narrowed, writing, env=make_environment(), context=replace(VOTES, recap=RECAP))
    assert sentence in rendered.html and "Panel vs readers, issue 6" in rendered.html
    assert rendered.html.index(sentence) < rendered.html.index('class="entry-title"')
    assert " ".join(rendered.text.split()).count(sentence) == 1
    assert rendered.text.index("Last week") < rendered.text.index("=" * 72)
    everyone = render_cohort(eight, Cohort(), env=make_environment(), context=replace(VOTES, recap=RECAP))
    assert "you sided with the panel on Alpha and Gamma; you disagreed on Beta" in everyone.html
    free = render_cohort(eight, Cohort(free_only=True), env=make_environment(), context=replace(VOTES, recap=RECAP))
    assert "Last week you sided with the panel on Gamma." in free.html and "Beta" not in free.text.split("=" * 72)[0]
    without = render_cohort(eight, Cohort(), env=make_environment(), context=VOTES)
    assert "Last week" not in without.html and "Last week" not in without.text


def test_only_disagreement_reads_as_disagreeing_with_the_panel() -> None:
    alone = Recap(3, (RECAP.lines[1],))
    assert alone.sentence == ("Last week you disagreed with the panel on Beta: panel 75% ship, readers 31% ship from "
                              "212 votes.")
    assert alone.for_cohort(Cohort(frozenset({"Design"}))) is None


def test_previews_point_vote_links_at_the_preview_page_and_pages_without_a_reader_drop_them(eight: Digest) -> None:
    rendered = render_cohort(eight, Cohort(), env=make_environment(), context=VOTES)
    envelope = Envelope("Verdicts <v@news.example.com>", "Verdicts", "news.example.com", "https://app.example.com")
    recipient = Recipient(0, "preview@news.example.com", "https://app.example.com/unsubscribe/preview",
                          "https://app.example.com/preferences/preview", "mailto:u@news.example.com")
    message = personalise(PreparedEmail.of(rendered), recipient, delivery_id=0, issue_number=1, envelope=envelope)
    assert f"/ship/{PREVIEW_VOTER}\"" in message.html and f"/skip/{PREVIEW_VOTER}\n" in message.text
    assert "/ship/\"" not in message.html  # no link with an empty token
    stripped = without_votes(message.html)
    assert "your-call" not in stripped and "/vote/" not in stripped
    assert stripped.count('class="entry-title"') == 8
    web = render_cohort(eight, Cohort(), env=make_environment(), context=CONTEXT)
    assert "/vote/" not in web.html and "your-call" not in web.html and "Your call" not in web.text
