"""Small frozen values handed between stages: catalog → digest → render → dispatch → provider.

None of these hold a database id except where a later stage must write back (Recipient, Message).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Generic, Literal
from zoneinfo import ZoneInfo

from typing_extensions import TypeVar

PERSONAS = ("Builder", "Skeptic", "Futurist", "Founder")
PricingTier = Literal["Free", "Paid"]
Stance = Literal["ship", "skip"]
VerdictLabel = Literal["Ship", "Mixed", "Skip"]
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
# A per-recipient placeholder in a rendered email: %%{unsubscribe_url}%%.
SLOT = re.compile(r"%%\{([a-z_]+)\}%%")


@dataclass(frozen=True, slots=True, order=True)
class Week:
    """An ISO week (``2026-W47``): the unit of publication."""

    year: int
    number: int

    @classmethod
    def parse(cls, text: str) -> Week:
        """Parse ``YYYY-Www``; ValueError says the expected form."""
        match = _WEEK.match(text.strip())
        if not match:
            raise ValueError(f"{text!r} is not an ISO week; write it as 2026-W47")
        week = cls(int(match[1]), int(match[2]))
        week.monday  # noqa: B018 - validates that the week exists in that year
        return week

    @classmethod
    def containing(cls, day: date) -> Week:
        """The ISO week that holds ``day``."""
        iso = day.isocalendar()
        return cls(iso.year, iso.week)

    @classmethod
    def current(cls, zone: ZoneInfo, now: datetime | None = None) -> Week:
        """The week it is now in ``zone``."""
        moment = now if now is not None else datetime.now(zone)
        return cls.containing(moment.astimezone(zone).date())

    @property
    def monday(self) -> date:
        """First day of the week."""
        try:
            return date.fromisocalendar(self.year, self.number, 1)
        except ValueError as exc:
            raise ValueError(f"{self} does not exist: {self.year} has no week {self.number}") from exc

    @property
    def sunday(self) -> date:
        """Last day of the week."""
        return self.monday + timedelta(days=6)

    def contains(self, day: date) -> bool:
        """Whether ``day`` falls in this week."""
        return self.monday <= day <= self.sunday

    def starts_at(self, zone: ZoneInfo) -> datetime:
        """Midnight of Monday in ``zone``."""
        return datetime.combine(self.monday, time.min, tzinfo=zone)

    def __str__(self) -> str:
        return f"{self.year}-W{self.number:02d}"


@dataclass(frozen=True, slots=True)
class Tool:
    """An AI product the site reviews."""

    slug: str
    name: str
    tagline: str
    description: str
    category: str
    pricing_tier: PricingTier
    pricing_note: str | None
    published: date


@dataclass(frozen=True, slots=True)
class Review:
    """One panel reviewer's take on one tool inside a comparison."""

    persona: str
    text: str
    score: int | None = None
    ship: bool | None = None


@dataclass(frozen=True, slots=True)
class PanelVerdict:
    """Ship count over panel size, percent and label, for one tool in one comparison."""

    percent: int
    label: VerdictLabel
    ship: int | None = None
    size: int | None = None

    @property
    def split(self) -> str | None:
        """``3 ship / 1 skip`` when the counts are known."""
        if self.ship is None or self.size is None:
            return None
        return f"{self.ship} ship / {self.size - self.ship} skip"


@dataclass(frozen=True, slots=True)
class CommunityVotes:
    """Readers' votes on one tool in one comparison; absent when nobody voted."""

    votes: int
    ship_percent: int | None = None


# How a side names its tool: the Tool itself once the catalog has resolved it (``Side``, ``Comparison``), or its
# slug as an importer hands it to the store (``Side[str]``, ``Comparison[str]``: the tool may be stored already).
ToolRef = TypeVar("ToolRef", Tool, str, default=Tool)


@dataclass(frozen=True, slots=True)
class Side(Generic[ToolRef]):
    """One tool as it stands in one comparison: its panel verdict, community votes and reviews.

    Resolved (``Side``), ``verdict`` is the published figure or else the one derived from the reviews; as imported
    (``Side[str]``), it is the published figure only, None when the source states none (see ``catalog.panel``).
    """

    tool: ToolRef
    verdict: PanelVerdict | None
    community: CommunityVotes | None
    reviews: tuple[Review, ...]


@dataclass(frozen=True, slots=True)
class Comparison(Generic[ToolRef]):
    """One head-to-head page of two tools (``Comparison[str]``: as imported, its tools named by slug)."""

    slug: str
    title: str
    published: date
    sides: tuple[Side[ToolRef], Side[ToolRef]]


@dataclass(frozen=True, slots=True)
class ScoreBar:
    """A reviewer's score drawn as a bar."""

    persona: str
    score: int
    ship: bool | None


@dataclass(frozen=True, slots=True)
class DigestTool:
    """What the digest shows of one tool in one comparison."""

    name: str
    slug: str
    tagline: str
    category: str
    pricing_tier: PricingTier
    pricing_note: str | None
    is_new: bool
    verdict: PanelVerdict | None
    community: CommunityVotes | None
    bars: tuple[ScoreBar, ...]

    @property
    def pricing(self) -> str:
        """The pricing read without saying the tier twice: ``Paid: $19 per seat``, or a note that opens with it."""
        note = (self.pricing_note or "").strip()
        if not note or note.casefold() == self.pricing_tier.casefold():
            return self.pricing_tier
        if re.match(rf"{self.pricing_tier}\b", note, re.IGNORECASE):
            return note  # "Free for public repositories" says Free already
        return f"{self.pricing_tier}: {note}"


@dataclass(frozen=True, slots=True)
class Case:
    """The strongest review on one side of a comparison's argument: the case for shipping or for skipping."""

    stance: Stance
    tool: str
    review: Review


@dataclass(frozen=True, slots=True)
class DigestEntry:
    """One comparison as the digest presents it."""

    slug: str
    title: str
    url: str
    published: date
    decision: str
    tools: tuple[DigestTool, DigestTool]
    call: str = ""
    ship_case: Case | None = None
    skip_case: Case | None = None


@dataclass(frozen=True, slots=True)
class Digest:
    """The week's selection, in reading order, with its generated subject and preheader."""

    week: Week
    subject: str
    preheader: str
    entries: tuple[DigestEntry, ...]
    new_tools: tuple[str, ...] = ()


def spoken(names: tuple[str, ...]) -> str:
    """``A``, ``A and B``, ``A, B and C``."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


@dataclass(frozen=True, slots=True)
class RecapLine:
    """One tool of last week's issue that enough readers voted on: the panel's and the readers' percent ship.

    ``categories`` and ``free`` describe the comparison (both tools), so a cohort's recap keeps the comparisons its
    readers were sent (the rule of ``digest.narrow``).
    """

    comparison: str
    tool: str
    panel_percent: int
    readers_percent: int
    votes: int
    sided: bool  # the readers' label (Ship > 50 %, Mixed, Skip < 50 %) is the panel's
    categories: frozenset[str] = frozenset()
    free: bool = False


@dataclass(frozen=True, slots=True)
class Recap:
    """The short recap of the previous issue's votes that opens the next issue."""

    issue_number: int
    lines: tuple[RecapLine, ...]

    @property
    def sided(self) -> tuple[RecapLine, ...]:
        """Tools where the readers sided with the panel."""
        return tuple(line for line in self.lines if line.sided)

    @property
    def disagreed(self) -> tuple[RecapLine, ...]:
        """Tools where the readers' label was not the panel's."""
        return tuple(line for line in self.lines if not line.sided)

    @property
    def sentence(self) -> str:
        """``Last week you sided with the panel on X and Y; you disagreed on Z: panel 75% ship, readers 31% ship
        from 212 votes.``"""
        parts = []
        if self.sided:
            parts.append(f"you sided with the panel on {spoken(tuple(line.tool for line in self.sided))}")
        if self.disagreed:
            figures = "; ".join(f"{line.tool}: panel {line.panel_percent}% ship, readers {line.readers_percent}% "
                                f"ship from {line.votes} votes" for line in self.disagreed)
            parts.append(f"you disagreed {'on' if self.sided else 'with the panel on'} {figures}")
        return f"Last week {'; '.join(parts)}."

    def for_cohort(self, cohort: Cohort) -> Recap | None:
        """The lines about comparisons ``cohort`` asks for; None when none is left."""
        lines = tuple(line for line in self.lines
                      if (not cohort.categories or line.categories & cohort.categories)
                      and (line.free or not cohort.free_only))
        return Recap(self.issue_number, lines) if lines else None


@dataclass(frozen=True, slots=True, order=True)
class Cohort:
    """Subscribers whose preferences select the same content (no categories means every category)."""

    categories: frozenset[str] = field(default_factory=frozenset)
    free_only: bool = False

    @property
    def key(self) -> str:
        """Stable text key, e.g. ``all`` or ``free:Coding,Writing``."""
        cats = ",".join(sorted(self.categories)) or "all"
        return f"free:{cats}" if self.free_only else cats

    @classmethod
    def from_key(cls, key: str) -> Cohort:
        """Inverse of :attr:`key`."""
        free_only = key.startswith("free:")
        cats = key.removeprefix("free:")
        return cls(frozenset() if cats == "all" else frozenset(cats.split(",")), free_only)

    def describe(self) -> str:
        """Reader-facing sentence of what this cohort asked for."""
        what = "every category" if not self.categories else ", ".join(sorted(self.categories))
        return f"{what}{' (free tools only)' if self.free_only else ''}"


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    """One cohort's email, rendered once, still holding ``%%{name}%%`` placeholders."""

    cohort_key: str
    subject: str
    preheader: str
    html: str
    text: str


@dataclass(frozen=True, slots=True)
class Recipient:
    """What the core needs of a subscriber to personalise and address a message."""

    id: int
    address: str
    unsubscribe_url: str
    preferences_url: str
    unsubscribe_mailto: str


@dataclass(frozen=True, slots=True)
class BodyTemplate:
    """One cohort's HTML and text with ``%%{slot}%%`` placeholders, shared by all its messages.

    Body-once providers (SendGrid, Mailgun) send it once per request with the recipients' slot values.
    """

    key: str
    html: str
    text: str


@dataclass(frozen=True, slots=True)
class Message:
    """A rendered email personalised for one recipient, with its headers.

    ``html`` and ``text`` are filled; ``template`` and ``slots`` are the same content before filling. For a
    provider that fills bodies itself ``html`` and ``text`` are left empty: it reads the template and the slots.
    """

    delivery_id: int
    sender: str
    to: str
    subject: str
    html: str
    text: str
    headers: tuple[tuple[str, str], ...] = ()
    template: BodyTemplate | None = None
    slots: tuple[tuple[str, str], ...] = ()

    def header(self, name: str) -> str | None:
        """The first header of that name, case-insensitively."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)


@dataclass(frozen=True, slots=True)
class SendResult:
    """The provider's answer for one message: submitted, or rejected with the reason."""

    delivery_id: int
    status: Literal["submitted", "rejected"]  # providers see no enum: a DeliveryStatus value, checked here
    provider_id: str | None = None
    reason: str | None = None
    permanent: bool = False

    @property
    def submitted(self) -> bool:
        """Whether the provider accepted the message (not proof of delivery)."""
        return self.status == "submitted"
