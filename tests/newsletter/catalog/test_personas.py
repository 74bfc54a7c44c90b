"""Persona assignment for pages that print quotes without headings."""

from __future__ import annotations

from newsletter.catalog.personas import assign

BUILDER = ("The primitive is clean and the DX is good.", "The primitive here is a hosted API; the moment of truth is setup.")
SKEPTIC = ("Competitors are everywhere; it breaks on big repos.", "The category is crowded and what kills this is price.")
FUTURIST = ("The thesis: by 2027 this is standard. The second-order effect is big.", "The thesis is falsifiable.")
FOUNDER = ("The buyer has a budget but the moat is thin.", "The buyer is unclear and the unit economics don't work.")


def test_documented_order_is_kept_when_wording_agrees() -> None:
    assert assign([BUILDER, SKEPTIC, FUTURIST, FOUNDER]) == ("Builder", "Skeptic", "Futurist", "Founder")


def test_clear_wording_overrides_a_swapped_order() -> None:
    assert assign([BUILDER, SKEPTIC, FOUNDER, FUTURIST]) == ("Builder", "Skeptic", "Founder", "Futurist")


def test_neutral_wording_keeps_the_documented_order() -> None:
    neutral = [("Good tool.", "Fine tool.")] * 4
    assert assign(neutral) == ("Builder", "Skeptic", "Futurist", "Founder")


def test_weak_evidence_does_not_override() -> None:
    # One stray cue word in the wrong place is not enough to reorder the panel.
    faint = [("A tool.", "A tool."), ("The buyer might like it.", "Nice."), ("Nice.", "Nice."), ("Nice.", "Nice.")]
    assert assign(faint) == ("Builder", "Skeptic", "Futurist", "Founder")
