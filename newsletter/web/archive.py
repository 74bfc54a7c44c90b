"""The public archive: sent issues as web pages and an Atom feed, with no personal links in them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from xml.etree import ElementTree as ET

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from newsletter import archive
from newsletter.db import session_scope
from newsletter.models import IssueRow
from newsletter.render import Fill
from newsletter.web.deps import SiteDep
from newsletter.web.site import IssueNumber, Site

ATOM = "http://www.w3.org/2005/Atom"
# The web version is the email's own HTML (inline styles, no scripts); it may be framed by no one.
WEB_VERSION_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src https:; "
                                                  "frame-ancestors 'none'; base-uri 'none'"}
routes = APIRouter()


@routes.get("/archive", response_class=HTMLResponse)
def archive_page(site: SiteDep) -> HTMLResponse:
    """The list of sent issues, newest first."""
    return site.page("archive.html", title="Archive", issues=sent(site))


@routes.get("/archive.atom")
def feed(site: SiteDep) -> Response:
    """The Atom feed of sent issues."""
    return Response(atom(site, sent(site)), media_type="application/atom+xml")


@routes.get("/archive/{number}", response_class=HTMLResponse)
def web_version(number: IssueNumber, site: SiteDep) -> HTMLResponse:
    """Sent issue ``number`` as a web page, its personal links replaced by neutral ones; 404 when not sent."""
    with session_scope(site.engine) as session:
        found = archive.web_version(session, number)
    if found is None:
        return site.page("invalid_link.html", 404, title="No such issue")
    # The web version is the full issue with neutral links: anyone may read it, nobody can act as a reader.
    neutral = {"unsubscribe_url": f"{site.base}/subscribe", "preferences_url": f"{site.base}/subscribe",
               "web_url": f"{site.base}/archive/{number}"}
    return HTMLResponse(Fill(found, escape=True).fill(neutral), headers=WEB_VERSION_HEADERS)


def sent(site: Site) -> list[IssueRow]:
    """The sent issues, newest first."""
    with session_scope(site.engine) as session:
        return archive.sent_issues(session)


def atom(site: Site, issues: Sequence[IssueRow]) -> bytes:
    """An Atom 1.0 feed of sent issues, newest first."""
    ET.register_namespace("", ATOM)
    root = ET.Element(f"{{{ATOM}}}feed")
    _text(root, "title", site.settings.publication_name)
    _text(root, "id", f"{site.base}/archive")
    newest = max((i.sent_at or i.created_at for i in issues), default=site.clock.now())
    _text(root, "updated", _stamp(newest))
    ET.SubElement(root, f"{{{ATOM}}}link", href=f"{site.base}/archive.atom", rel="self")
    author = ET.SubElement(root, f"{{{ATOM}}}author")
    _text(author, "name", site.settings.publication_name)
    for issue in issues:
        entry = ET.SubElement(root, f"{{{ATOM}}}entry")
        _text(entry, "title", f"#{issue.number} ({issue.week}): {issue.subject}")
        _text(entry, "id", f"{site.base}/archive/{issue.number}")
        _text(entry, "updated", _stamp(issue.sent_at or issue.created_at))
        ET.SubElement(entry, f"{{{ATOM}}}link", href=f"{site.base}/archive/{issue.number}", rel="alternate")
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document


def _text(parent: ET.Element, tag: str, text: str) -> None:
    ET.SubElement(parent, f"{{{ATOM}}}{tag}").text = text


def _stamp(moment: datetime) -> str:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
