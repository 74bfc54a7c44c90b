"""An issue's link table: every link of its emails that leaves for the site goes through ``/r/{issue}/{link}``.

The rendered emails are stored with plain site links; :func:`route_issue` then rewrites each stored cohort's HTML
and text in place and records the targets. A link's number is kept for its target for the life of the issue
(a re-render after an edit finds the target already numbered), and rows are never removed: an email mailed
before an edit (a test send) keeps working. The redirect reads the target from this table by (issue, number),
never from the URL, so it cannot be used as an open redirect.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlmodel import Session, col, select

from newsletter.models import IssueCohortRow, IssueLinkRow, IssueRow

_HREF = re.compile(r'href="([^"]*)"')
_TEXT_URL = re.compile(r"https?://[^\s<>\"]+")
ALL = "all"  # the every-category cohort, numbered first so link numbers follow its reading order
MAX_TARGET = 2000  # the link table's column; a longer link (none the digest makes) is left pointing at the site


@dataclass(frozen=True, slots=True)
class Redirects:
    """Where redirect links point (``public_url``), which links they replace (those to ``site_url``'s host),
    and whether they carry the reader's token (``track_readers``)."""

    public_url: str
    site_url: str
    track_readers: bool = False

    def url(self, number: int, link: int) -> str:
        """The redirect URL of link ``link`` of issue ``number``; tracked, with the per-recipient ``voter`` slot."""
        base = f"{self.public_url.rstrip('/')}/r/{number}/{link}"
        return base + "?r=%%{voter}%%" if self.track_readers else base

    def leaves_for_site(self, url: str) -> bool:
        """Whether ``url`` goes to the site (its host), and not to this app (unsubscribe, preferences, web version)."""
        if url.startswith(self.public_url.rstrip("/") + "/") or len(url) > MAX_TARGET:
            return False
        found, site = urlsplit(url), urlsplit(self.site_url)
        return found.scheme in ("http", "https") and found.netloc.lower() == site.netloc.lower()


@dataclass(frozen=True, slots=True)
class Target:
    """Where a link goes, and what the desk calls it: the comparison it belongs to (its slug) and a label."""

    url: str
    comparison: str | None
    label: str


@dataclass(frozen=True, slots=True)
class Link:
    """One row of an issue's link table, as the redirect needs it."""

    issue_id: int
    id: int
    target: str


def route_issue(session: Session, issue: IssueRow, targets: Mapping[str, Target], redirects: Redirects) -> int:
    """Point every site link of ``issue``'s stored emails at its redirect, numbering new targets; how many links
    the issue's table holds. ``targets`` labels the digest's own links (by URL); any other site link is labelled
    by its path."""
    assert issue.id is not None
    table = _Table(session, issue, targets, redirects)
    rows = sorted(session.exec(select(IssueCohortRow).where(IssueCohortRow.issue_id == issue.id)),
                  key=lambda row: (row.cohort_key != ALL, row.cohort_key))
    for row in rows:
        row.html = _HREF.sub(table.href, row.html)
        row.text = _TEXT_URL.sub(table.plain, row.text)
    session.flush()
    return table.count


class _Table:
    """The issue's link table while its emails are rewritten: known targets keep their numbers."""

    def __init__(self, session: Session, issue: IssueRow, targets: Mapping[str, Target], redirects: Redirects) -> None:
        assert issue.id is not None
        self.session, self.issue_id, self.number = session, issue.id, issue.number
        self.targets, self.redirects = targets, redirects
        self.rows = {row.target: row for row in session.exec(
            select(IssueLinkRow).where(IssueLinkRow.issue_id == issue.id))}
        self.count = len(self.rows)

    def href(self, match: re.Match[str]) -> str:
        """An ``href`` attribute, routed when it leaves for the site."""
        url = html.unescape(match[1])
        return f'href="{html.escape(self.routed(url))}"' if self.redirects.leaves_for_site(url) else match[0]

    def plain(self, match: re.Match[str]) -> str:
        """A URL in the text twin, routed when it leaves for the site (the punctuation after it left as it is)."""
        url, after = _trimmed(match[0])
        return self.routed(url) + after if self.redirects.leaves_for_site(url) else match[0]

    def routed(self, url: str) -> str:
        """The redirect URL for ``url``, numbering it on first sight."""
        row = self.rows.get(url)
        if row is None:
            target = self.targets.get(url) or Target(url, None, urlsplit(url).path or url)
            self.count += 1
            row = IssueLinkRow(issue_id=self.issue_id, link=self.count, target=url, comparison=target.comparison,
                               label=target.label[:400], tracked=self.redirects.track_readers)
            self.session.add(row)
            self.rows[url] = row
        row.tracked = row.tracked or self.redirects.track_readers
        return self.redirects.url(self.number, row.link)


def _trimmed(found: str) -> tuple[str, str]:
    """A URL found in running text without the sentence's punctuation after it: ``(see https://x/y).`` ends at y."""
    url = found.rstrip(".,;:!?'")
    while url.endswith(")") and url.count(")") > url.count("("):
        url = url[:-1].rstrip(".,;:!?'")
    return url, found[len(url):]


def find_link(session: Session, number: int, link: int) -> Link | None:
    """Link ``link`` of issue ``number``, or None when the issue has no such link."""
    found = session.exec(select(IssueLinkRow.issue_id, IssueLinkRow.id, IssueLinkRow.target)
                         .join(IssueRow, col(IssueRow.id) == col(IssueLinkRow.issue_id))
                         .where(IssueRow.number == number, IssueLinkRow.link == link)).first()
    if found is None:
        return None
    issue_id, row_id, target = found
    assert row_id is not None
    return Link(issue_id, row_id, target)


def targets_of(session: Session, issue_id: int) -> dict[int, str]:
    """The issue's link table as {link number: target}."""
    return dict(session.exec(select(IssueLinkRow.link, IssueLinkRow.target)
                             .where(IssueLinkRow.issue_id == issue_id)).all())

