"""Which persona wrote a review, from its wording, for pages that print reviews without headings.

Each persona of the panel argues from its own brief, and its reviews carry that brief's vocabulary: the
Builder talks primitives and developer experience, the Skeptic competitors and failure scenarios, the
Futurist theses and second-order effects, the Founder buyers, moats and unit economics. Compact pages
list the quotes in a documented order; :func:`assign` keeps that order unless the wording contradicts it
clearly, because a wrong persona on a quote is worse than a mis-scored cue.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import permutations

from newsletter.values import PERSONAS

CUES: dict[str, tuple[str, ...]] = {
    "Builder": ("primitive", "dx", "developer experience", "moment of truth", "api surface", "sdk",
                "documented", "integration", "migration pain", "wiring"),
    "Skeptic": ("competitor", "breaks", "kills this", "unverified", "curated", "stress-test",
                "hype", "superseded", "category"),
    "Futurist": ("thesis", "second-order", "by 2027", "by 2028", "by 2030", "trend", "future state",
                 "falsifiable", "precedent", "infrastructure layer"),
    "Founder": ("buyer", "budget", "moat", "unit economics", "revenue", "business", "switching cost",
                "procurement", "pricing architecture", "retention"),
}
# Overriding the documented order needs this many more cue hits than keeping it.
MARGIN = 3


def cue_score(text: str, persona: str) -> int:
    """How many of ``persona``'s cue phrases occur in ``text`` (whole words, case-insensitive)."""
    lowered = text.lower()
    return sum(len(re.findall(rf"\b{re.escape(cue)}\b", lowered)) for cue in CUES[persona])


def assign(pairs: Sequence[tuple[str, str]]) -> tuple[str, ...]:
    """The persona of each quote pair (first tool, second tool), given in documented panel order.

    Tries every assignment of the pairs to personas; the best-scoring one replaces the documented order
    only when it beats it by at least MARGIN cue hits.
    """
    if len(pairs) != len(PERSONAS):
        raise ValueError(f"expected {len(PERSONAS)} pairs of quotes, got {len(pairs)}")
    scores = [[cue_score(a, p) + cue_score(b, p) for p in PERSONAS] for a, b in pairs]

    def total(order: Sequence[int]) -> int:
        return sum(scores[pair][persona] for pair, persona in enumerate(order))

    documented = tuple(range(len(PERSONAS)))
    best = max(permutations(documented), key=lambda order: (total(order), order == documented))
    chosen = best if total(best) >= total(documented) + MARGIN else documented
    return tuple(PERSONAS[i] for i in chosen)
