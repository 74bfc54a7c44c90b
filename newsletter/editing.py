"""An editor's changes to an issue, kept as intent: the comparisons' order, pins and drops, a note, and the
subject and preheader. Pure: applied to a freshly built digest, so a re-render from the catalog keeps them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from markdown_it import MarkdownIt

from newsletter.digest import assemble, narrow
from newsletter.errors import IssueError
from newsletter.render import _defuse as defuse  # the one way catalog text is kept from posing as a slot
from newsletter.values import Cohort, Digest, DigestEntry

Move = Literal["up", "down", "pin", "unpin", "drop", "restore"]
MOVES: tuple[str, ...] = ("up", "down", "pin", "unpin", "drop", "restore")
NOTE_LIMIT = 5000
# Raw HTML in a note is shown as text, never passed through; markdown-it also refuses javascript: links.
_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_STRONG = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_EMPHASIS = re.compile(r"(?<![*\w])([*_])(?=\S)([^*_\n]+?)(?<=\S)\1(?![*\w])")
# Control characters other than line breaks and tabs: no mail client shows them, and PostgreSQL refuses NUL.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Arrangement:
    """Which comparisons an issue shows, in which order: pinned first, dropped never, the rest by ``order``."""

    order: tuple[str, ...] = ()
    pinned: frozenset[str] = field(default_factory=frozenset)
    dropped: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def parse(cls, text: str) -> Arrangement:
        """Read the stored form; an empty text is the digest's own order."""
        if not text:
            return cls()
        data = json.loads(text)
        return cls(tuple(data.get("order", ())), frozenset(data.get("pinned", ())), frozenset(data.get("dropped", ())))

    def dumps(self) -> str:
        """The stored form (stable, so an unchanged arrangement stores the same text)."""
        return json.dumps({"order": list(self.order), "pinned": sorted(self.pinned), "dropped": sorted(self.dropped)})

    def arrange(self, entries: Sequence[DigestEntry], limit: int) -> tuple[DigestEntry, ...]:
        """The entries to show: dropped ones out, pinned ones first, then the editor's order, cut to ``limit``.

        Pinned comparisons always stay, even past the limit; entries the editor never placed keep the digest's
        order after the placed ones.
        """
        rank = {slug: i for i, slug in enumerate(self.order)}
        kept = [e for e in entries if e.slug not in self.dropped]
        position = {e.slug: i for i, e in enumerate(kept)}
        kept.sort(key=lambda e: (e.slug not in self.pinned, rank.get(e.slug, len(rank) + position[e.slug])))
        pinned = [e for e in kept if e.slug in self.pinned]
        return tuple(pinned + [e for e in kept if e.slug not in self.pinned][:max(limit - len(pinned), 0)])

    def moved(self, shown: Sequence[str], slug: str, move: Move) -> Arrangement:
        """The arrangement after one editor action on ``slug``; ``shown`` is the order on screen now."""
        if move == "drop":
            return replace(self, dropped=self.dropped | {slug}, pinned=self.pinned - {slug})
        if move == "restore":
            return replace(self, dropped=self.dropped - {slug})
        if move in ("pin", "unpin"):
            return replace(self, pinned=self.pinned | {slug} if move == "pin" else self.pinned - {slug})
        order = list(shown) + [s for s in self.order if s not in shown]
        if slug not in order:
            raise IssueError(f"{slug} is not in this issue; reload the page")
        i = order.index(slug)
        j = i - 1 if move == "up" else i + 1
        if 0 <= j < len(shown):
            order[i], order[j] = order[j], order[i]
        return replace(self, order=tuple(order))


@dataclass(frozen=True, slots=True)
class Edits:
    """Everything an editor changed on one issue."""

    arrangement: Arrangement = field(default_factory=Arrangement)
    note: str = ""
    subject: str | None = None
    preheader: str | None = None

    def digest(self, candidates: Digest, limit: int) -> Digest:
        """The issue's full digest: ``candidates`` (every comparison of the week) arranged and cut to ``limit``."""
        entries = self.arrangement.arrange(candidates.entries, limit)
        if not entries:
            raise IssueError("every comparison of this issue is dropped: restore at least one")
        return self.headed(assemble(candidates.week, entries))

    def for_cohort(self, digest: Digest, cohort: Cohort) -> Digest | None:
        """``digest`` narrowed to what ``cohort`` asked for, with the editor's subject and preheader."""
        narrowed = narrow(digest, cohort)
        return None if narrowed is None else self.headed(narrowed)

    def headed(self, digest: Digest) -> Digest:
        """``digest`` with the subject and preheader overrides applied."""
        return replace(digest, subject=self.subject or digest.subject, preheader=self.preheader or digest.preheader)


def clean_note(text: str) -> str:
    """The note as stored: line endings normalised, trimmed; IssueError when it is too long for an email."""
    note = text.replace("\r\n", "\n").strip()
    _refuse_control(note, "note")
    if len(note) > NOTE_LIMIT:
        raise IssueError(f"the note is {len(note)} characters; keep it under {NOTE_LIMIT}")
    return note


def note_html(note: str) -> str:
    """The note's Markdown as safe HTML: raw HTML is escaped, unsafe link schemes are refused, and a ``%%{name}%%``
    in it stays text (the HTML enters the template as markup, past the escaping that defuses catalog text)."""
    return str(defuse(_MARKDOWN.render(note).strip())) if note else ""


def note_text(note: str) -> str:
    """The note for the text version: Markdown reads well as it is, without emphasis markers, and with links
    written ``text (url)``; a ``%%{name}%%`` in it stays text."""
    return str(defuse(_EMPHASIS.sub(r"\2", _STRONG.sub(r"\2", _LINK.sub(r"\1 (\2)", note)))))


def clean_header(text: str, *, name: str, limit: int) -> str | None:
    """A subject or preheader override: one line, trimmed, None when empty; IssueError when too long."""
    value = " ".join(text.split())
    _refuse_control(value, name)
    if len(value) > limit:
        raise IssueError(f"the {name} is {len(value)} characters; keep it under {limit}")
    return value or None


def _refuse_control(text: str, name: str) -> None:
    found = _CONTROL.search(text)
    if found:
        raise IssueError(f"the {name} contains a control character (U+{ord(found[0]):04X}); remove it")
