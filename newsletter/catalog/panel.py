"""Panel math: percent, split and label of a panel verdict, from the published figure or the reviews."""

from __future__ import annotations

from collections.abc import Sequence

from newsletter.values import PanelVerdict, Review, VerdictLabel


def label_for(percent: int) -> VerdictLabel:
    """Ship above 50 %, Mixed at exactly 50 %, Skip below."""
    if percent > 50:
        return "Ship"
    return "Mixed" if percent == 50 else "Skip"


def from_reviews(reviews: Sequence[Review]) -> PanelVerdict | None:
    """The verdict the reviews' ship/skip calls add up to; None when no review says ship or skip."""
    calls = [review.ship for review in reviews if review.ship is not None]
    if not calls:
        return None
    ship = sum(calls)
    percent = round(100 * ship / len(calls))
    return PanelVerdict(percent=percent, label=label_for(percent), ship=ship, size=len(calls))


def resolve(published: PanelVerdict | None, reviews: Sequence[Review]) -> PanelVerdict | None:
    """The panel verdict to show: the published figure wins; missing counts are filled in.

    When only the percent was published, the split is derived from the reviews' calls if they agree with it,
    or from the panel size when percent × size is a whole number of reviewers (75 % of 4 is 3 ship).
    """
    derived = from_reviews(reviews)
    if published is None:
        return derived
    if published.ship is not None:
        return published
    if derived is not None and derived.percent == published.percent:
        return PanelVerdict(published.percent, published.label, derived.ship, derived.size)
    size = len(reviews)
    if size and (published.percent * size) % 100 == 0:
        return PanelVerdict(published.percent, published.label, published.percent * size // 100, size)
    return published


def check_published(percent: int, ship: int | None, size: int | None) -> str | None:
    """Why a published figure is self-contradictory, or None when it is consistent."""
    if not 0 <= percent <= 100:
        return f"panel percent {percent} is outside 0–100"
    if (ship is None) != (size is None):
        return "give both 'ship' and 'size' of the panel, or neither"
    if ship is not None and size is not None:
        if not 0 <= ship <= size or size == 0:
            return f"panel split {ship} of {size} is impossible"
        if round(100 * ship / size) != percent:
            return f"panel percent {percent} does not match the split {ship} ship of {size}"
    return None
