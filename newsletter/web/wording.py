"""What the reader pages say about a subscription: its status in words, and what a save changed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from subscribers.models import Subscriber
from subscribers.store import cohort_of

CATEGORY_RULE = ("A comparison reaches you when either of its two tools is in a ticked category. "
                 "With no category ticked you get every category.")


@dataclass(frozen=True, slots=True)
class Choices:
    """What a reader chose: categories (none: all of them), free tools only, issues left to skip, time zone (none:
    the publication's)."""

    categories: tuple[str, ...]
    free_only: bool
    pause: int
    time_zone: str | None = None

    @classmethod
    def of(cls, row: Subscriber) -> Choices:
        """The choices stored on ``row``."""
        return cls(tuple(sorted(cohort_of(row).categories)), row.free_only, row.pause_remaining, row.time_zone)


def status_line(row: Subscriber) -> str:
    """The subscription's state as the reader should read it: active, paused for N more issues, or not sent."""
    if row.status == "active" and row.pause_remaining:
        n = row.pause_remaining
        return f"Paused: the next {n} issue{'s' if n != 1 else ''} will be skipped, then your issues start again."
    if row.status == "active":
        return "Active: you get every issue."
    if row.status == "pending":
        return "Waiting for confirmation: press the button in the confirmation email to start."
    if row.status == "unsubscribed":
        return "Unsubscribed: no issues are sent to you."
    return "Not sent: mail to this address could not be delivered, so issues are no longer sent to it."


def categories_words(categories: Sequence[str]) -> str:
    """``Audio and Design``, or ``every category`` for none."""
    if not categories:
        return "every category"
    items = list(categories)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def what_changed(before: Choices, after: Choices) -> str:
    """One sentence naming each change between two sets of choices, or that nothing changed."""
    said = []
    if before.categories != after.categories:
        said.append(f"you now get {categories_words(after.categories)}")
    if before.free_only != after.free_only:
        said.append("only comparisons with a free tool" if after.free_only else "paid tools too")
    if before.pause != after.pause:
        n = after.pause
        said.append(f"the next {n} issue{'s' if n != 1 else ''} will be skipped" if n else "no pause: issues resume")
    if before.time_zone != after.time_zone:
        zone = after.time_zone or "the publication's"
        said.append(f"your time zone is {zone}")
    if not said:
        return "Saved; nothing changed."
    return "Saved: " + "; ".join(said) + "."
