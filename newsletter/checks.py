"""Checks before sending: what an editor should see before approving an issue. Pure: rendered emails in,
findings out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from newsletter.errors import IssueTooLarge
from newsletter.values import SLOT, Cohort, RenderedEmail

GMAIL_CLIP = 102 * 1024  # Gmail hides everything after ~102 KB of HTML behind "[Message clipped]"
# A stand-in for each per-recipient link when no recipient is at hand: longer than the signed links this app
# writes (public URL, path and token), so an issue that passes here passes for every reader.
STAND_IN_LINK = "https://" + "x" * 112
CUT = "drop comparisons on the desk or lower NEWSLETTER_DIGEST_LIMIT"
SUBJECT_VISIBLE = 60  # about what a phone's inbox shows before cutting the subject
SUBJECT_LIMIT = 100
_IMG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_ALT = re.compile(r"\salt\s*=", re.IGNORECASE)
_HREF = re.compile(r"""\bhref\s*=\s*["']([^"']+)["']""", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Finding:
    """One check's verdict: ``ok``, ``warning`` (worth a look) or ``error`` (fix before sending)."""

    level: Literal["ok", "warning", "error"]
    check: str
    detail: str


def check_issue(emails: Mapping[str, RenderedEmail], *, filled_html: Mapping[str, str], allowed_hosts: Sequence[str],
                empty_cohorts: Sequence[tuple[str, int]]) -> list[Finding]:
    """Every check over an issue's cohorts: size, image alt text, links, subject, empty cohorts.

    ``filled_html`` is each cohort's HTML with links filled in (the size a reader's client measures);
    ``empty_cohorts`` pairs each cohort that gets nothing with its number of readers.
    """
    return [size(filled_html), alt_text(filled_html), links(filled_html, allowed_hosts),
            subject(emails), empty(empty_cohorts)]


def size(filled_html: Mapping[str, str]) -> Finding:
    """The largest cohort's HTML against Gmail's clipping threshold."""
    key, largest = max(((k, len(v.encode())) for k, v in filled_html.items()), key=lambda kv: kv[1])
    figure = f"{largest / 1024:.0f} KB of HTML (cohort {key})"
    if largest > GMAIL_CLIP:
        return Finding("error", "Size", f"{figure}: Gmail clips anything over 102 KB; {CUT}")
    if largest > GMAIL_CLIP * 0.85:
        return Finding("warning", "Size", f"{figure}: close to Gmail's 102 KB clipping")
    return Finding("ok", "Size", f"{figure}, under Gmail's 102 KB clipping")


def refuse_oversized(emails: Mapping[str, RenderedEmail]) -> None:
    """Raise IssueTooLarge, saying what to cut, when a cohort's HTML with its links filled would be clipped."""
    finding = size({key: SLOT.sub(STAND_IN_LINK, email.html) for key, email in emails.items()})
    if finding.level == "error":
        raise IssueTooLarge(f"this issue would be clipped: {finding.detail}")


def alt_text(filled_html: Mapping[str, str]) -> Finding:
    """Images without ``alt``: screen readers and image-blocking clients show nothing useful."""
    images = [tag for body in filled_html.values() for tag in _IMG.findall(body)]
    if not images:  # "every image has alt text" would claim a check that had nothing to look at
        return Finding("ok", "Images", "no images")
    missing = sum(1 for tag in images if not _ALT.search(tag))
    if missing:
        return Finding("warning", "Images", f"{missing} image(s) without alt text")
    return Finding("ok", "Images", "every image has alt text")


def links(filled_html: Mapping[str, str], allowed_hosts: Sequence[str]) -> Finding:
    """Links that lead neither to the site nor to this app (a typo, or a note pointing somewhere unexpected)."""
    allowed = {h.lower() for h in allowed_hosts}
    foreign = sorted({href for body in filled_html.values() for href in _HREF.findall(body)
                      if not href.startswith(("mailto:", "#")) and (urlsplit(href).hostname or "") not in allowed})
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        return Finding("warning", "Links", f"{len(foreign)} link(s) outside {', '.join(sorted(allowed))}: {shown}")
    return Finding("ok", "Links", f"every link points at {', '.join(sorted(allowed))}")


def subject(emails: Mapping[str, RenderedEmail]) -> Finding:
    """Subject lines: present, and short enough that a phone shows the point."""
    longest = max((e.subject for e in emails.values()), key=len)
    if not longest.strip():
        return Finding("error", "Subject", "the subject is empty")
    if len(longest) > SUBJECT_LIMIT:
        return Finding("error", "Subject", f"{len(longest)} characters: keep it under {SUBJECT_LIMIT}")
    if len(longest) > SUBJECT_VISIBLE:
        return Finding("warning", "Subject", f"{len(longest)} characters: phones show about {SUBJECT_VISIBLE}; "
                                             f"{longest[:SUBJECT_VISIBLE]!r} is what they see")
    return Finding("ok", "Subject", f"{len(longest)} characters")


def empty(empty_cohorts: Sequence[tuple[str, int]]) -> Finding:
    """Readers whose preferences match nothing in this issue: they get no email this week."""
    readers = sum(count for _, count in empty_cohorts)
    if readers:
        who = "; ".join(f"{Cohort.from_key(k).describe()} ({n})" for k, n in empty_cohorts)
        return Finding("warning", "Cohorts", f"{readers} reader(s) get nothing this week: {who}")
    return Finding("ok", "Cohorts", "every active reader gets this issue")
