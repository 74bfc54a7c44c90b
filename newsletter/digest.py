"""Pure: pick, order and present a week's comparisons → Digest | None; narrow it for a cohort.

Never opens a session: it takes comparison values and returns frozen values.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from newsletter.values import (
    Case,
    Cohort,
    Comparison,
    Digest,
    DigestEntry,
    DigestTool,
    PanelVerdict,
    Review,
    ScoreBar,
    Side,
    Stance,
    Week,
)

QUOTE_LIMIT = 240
# Where a page gives neither score nor ship/skip, the personas' briefs say which way they argue: the Builder
# makes the practical case for adopting, the Skeptic the case from competitors and failure cases.
PERSONA_STANCE: dict[str, Stance] = {"Builder": "ship", "Skeptic": "skip"}
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9“\"'(])")


def build_digest(
    comparisons: Sequence[Comparison], *, week: Week, site_url: str, limit: int = 8
) -> Digest | None:
    """The week's digest, or None on a quiet week (no comparison published in it, no tool new in it).

    Selected: comparisons published in the week, or published by its end and involving a tool first
    published in it. Order, the rule an editor would defend:

    1. comparisons that introduce more of the week's new tools first: that is the news;
    2. then the clearest call (largest gap between the two panel percents): a decisive verdict helps a
       reader choose, a split is worth reading after;
    3. then the newer comparison first, then by slug so the order is stable.

    At most ``limit`` comparisons are kept; the rest wait on the site.
    """
    chosen = [c for c in comparisons if c.published <= week.sunday and _relevant(c, week)]
    if not chosen:
        return None
    chosen.sort(key=lambda c: (-_new_count(c, week), -_gap(c), -c.published.toordinal(), c.slug))
    entries = tuple(_entry(c, week, site_url) for c in chosen[:limit])
    return assemble(week, entries)


def narrow(digest: Digest, cohort: Cohort) -> Digest | None:
    """The digest as ``cohort`` asked for it, or None when nothing this week matches its preferences.

    A comparison matches when either tool is in one of the cohort's categories (no categories: all), and,
    for free-only readers, when at least one of the two tools is free.
    """
    entries = tuple(entry for entry in digest.entries if _matches(entry, cohort))
    if not entries:
        return None
    if entries == digest.entries:
        return digest
    return assemble(digest.week, entries)


def _matches(entry: DigestEntry, cohort: Cohort) -> bool:
    in_category = not cohort.categories or any(t.category in cohort.categories for t in entry.tools)
    affordable = not cohort.free_only or any(t.pricing_tier == "Free" for t in entry.tools)
    return in_category and affordable


def assemble(week: Week, entries: tuple[DigestEntry, ...]) -> Digest:
    """A digest of ``entries`` in this order, with the subject, preheader and new tools they imply."""
    new_tools = tuple(dict.fromkeys(t.name for e in entries for t in e.tools if t.is_new))
    return Digest(week, subject_for(entries), preheader_for(entries, new_tools), entries, new_tools)


def subject_for(entries: Sequence[DigestEntry]) -> str:
    """``Lead A vs B, and 3 more verdicts`` (or the lead alone in a one-comparison week)."""
    lead, more = entries[0], len(entries) - 1
    if not more:
        return f"This week's verdict: {lead.title}"
    return f"{lead.title}, and {more} more verdict{'s' if more > 1 else ''}"


def preheader_for(entries: Sequence[DigestEntry], new_tools: Sequence[str]) -> str:
    """The inbox preview line: how much is new, then the lead's decision."""
    count = len(new_tools)
    news = f"{count} new tool{'s' if count != 1 else ''} this week" if count else "This week's comparisons"
    return f"{news}. {entries[0].decision}"


def _relevant(comparison: Comparison, week: Week) -> bool:
    return week.contains(comparison.published) or _new_count(comparison, week) > 0


def _new_count(comparison: Comparison, week: Week) -> int:
    return sum(week.contains(side.tool.published) for side in comparison.sides)


def _gap(comparison: Comparison) -> int:
    a, b = (side.verdict for side in comparison.sides)
    return abs(a.percent - b.percent) if a and b else 0


def _entry(comparison: Comparison, week: Week, site_url: str) -> DigestEntry:
    url = site_url.rstrip("/") + "/" + comparison.slug
    a, b = (_tool(side, week) for side in comparison.sides)
    ship, skip = cases(comparison.sides)
    return DigestEntry(comparison.slug, comparison.title, url, comparison.published,
                       decision(comparison.sides), (a, b), call(comparison.sides), ship, skip)


def _tool(side: Side, week: Week) -> DigestTool:
    tool = side.tool
    bars = tuple(ScoreBar(r.persona, r.score, r.ship) for r in side.reviews if r.score is not None)
    return DigestTool(
        tool.name, tool.slug, tool.tagline, tool.category, tool.pricing_tier, tool.pricing_note,
        week.contains(tool.published), side.verdict, side.community, bars,
    )


def _ranked(sides: Sequence[Side]) -> list[tuple[str, PanelVerdict]]:
    """The tools that have a panel verdict, with it, highest percent first (page order between equals)."""
    judged = [(s.tool.name, s.verdict) for s in sides if s.verdict is not None]
    return sorted(judged, key=lambda pair: -pair[1].percent)


def decision(sides: Sequence[Side]) -> str:
    """One line: who the panel favours, or where it splits."""
    ranked = _ranked(sides)
    if not ranked:
        return "No panel verdict yet for either tool."
    if len(ranked) == 1:
        name, verdict = ranked[0]
        return f"Only {name} has a panel verdict so far: {verdict.percent}% ship."
    (win, wv), (lose, lv) = ranked
    if wv.percent != lv.percent:
        return f"The panel favours {win}: {wv.percent}% ship against {lv.percent}% for {lose}."
    return _tie(sides, wv)


def call(sides: Sequence[Side]) -> str:
    """The decision in a few words, for the issue's contents: who leads and by how much, or where it splits."""
    ranked = _ranked(sides)
    if not ranked:
        return "No panel verdict yet"
    if len(ranked) == 1:
        name, verdict = ranked[0]
        return f"Only {name} has a verdict: {verdict.percent}% ship"
    (win, wv), (_, lv) = ranked
    if wv.percent == lv.percent:
        return f"Split: both at {wv.percent}% ship"
    return f"{win} leads, {wv.percent}% to {lv.percent}% ship"


def _tie(sides: Sequence[Side], verdict: PanelVerdict) -> str:
    first, second = (_mean_score(side.reviews) for side in sides)
    head = f"A split decision: both at {verdict.percent}% ship"
    if first is not None and second is not None and abs(first - second) >= 3:
        lean = sides[0] if first > second else sides[1]
        hi, lo = round(max(first, second)), round(min(first, second))
        return f"{head}, but the scores lean to {lean.tool.name} ({hi} against {lo})."
    return f"{head}; read both cases before you choose."


def _mean_score(reviews: Sequence[Review]) -> float | None:
    scores = [r.score for r in reviews if r.score is not None]
    return sum(scores) / len(scores) if scores else None


def cases(sides: Sequence[Side]) -> tuple[Case | None, Case | None]:
    """The strongest case for shipping and the strongest case for skipping, over all reviews of both tools.

    A review argues for shipping or for skipping by its ship/skip verdict; without one, by its score (above 50
    ships, below skips, 50 sits on the fence); without either, by its persona's stance (the Builder argues
    for, the Skeptic against; the Futurist and the Founder take no side). The strongest case for shipping is
    the highest score among reviews that argue for it, the strongest case for skipping the lowest among those
    that argue against; a scored review beats an unscored one. Ties go to the tool the panel favours (for
    shipping) or disfavours (for skipping), then to panel order, then to the first tool. Either case is None
    when no review argues that way. The text is shortened at a sentence boundary.

    So a panel whose Builder always scores highest still shows the counter-case: the skip case is never one
    of its ship verdicts.
    """
    reviews = [(index, side, rank, review) for index, side in enumerate(sides)
               for rank, review in enumerate(side.reviews)]

    def strongest(wanted: Stance) -> Case | None:
        sign = 1 if wanted == "ship" else -1

        def strength(entry: tuple[int, Side, int, Review]) -> tuple[bool, int, int, int, int]:
            index, side, rank, review = entry
            percent = side.verdict.percent if side.verdict else 50
            return review.score is not None, sign * (review.score or 0), sign * percent, -rank, -index

        arguing = [entry for entry in reviews if stance(entry[3]) == wanted]
        if not arguing:
            return None
        _, side, _, review = max(arguing, key=strength)
        return Case(wanted, side.tool.name, replace(review, text=shorten(review.text)))

    return strongest("ship"), strongest("skip")


def stance(review: Review) -> Stance | None:
    """Which way ``review`` argues: its verdict, else its score against 50, else its persona's stance."""
    if review.ship is not None:
        return "ship" if review.ship else "skip"
    if review.score is not None:
        return None if review.score == 50 else "ship" if review.score > 50 else "skip"
    return PERSONA_STANCE.get(review.persona)


def shorten(text: str, limit: int = QUOTE_LIMIT) -> str:
    """Whole sentences up to ``limit`` characters; a first sentence longer than that is cut at a word."""
    sentences = _SENTENCE_END.split(text.strip())
    kept = sentences[0]
    for sentence in sentences[1:]:
        if len(kept) + 1 + len(sentence) > limit:
            break
        kept = f"{kept} {sentence}"
    if len(kept) <= limit:
        return kept
    return kept[:limit].rsplit(" ", 1)[0].rstrip(",;:—–- ") + "…"
