"""The public archive: sent issues listed with their date and summary, each issue's web version, an Atom feed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from xml.etree import ElementTree as ET

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from newsletter import archive
from newsletter.db import session_scope
from newsletter.models import IssueRow
from newsletter.web.deps import SiteDep, WiringDep
from newsletter.web.error_pages import error_page
from newsletter.web.site import IssueNumber, Site
from newsletter.web.web_version import web_version as make_web_version

ATOM = "http://www.w3.org/2005/Atom"
FEED_ENTRIES = 20
# The web version is the email's own HTML (inline styles, no scripts); it may be framed by no one.
WEB_VERSION_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src https:; "
                                                  "frame-ancestors 'none'; base-uri 'none'"}
routes = APIRouter()


@routes.get("/archive", response_class=HTMLResponse)
def archive_page(site: SiteDep) -> HTMLResponse:
    """The sent issues, newest first, each with the day it went out and its one-line summary."""
    with session_scope(site.engine) as session:
        found = archive.sent_previews(session)
    listed = [{"number": row.number, "subject": row.subject, "summary": summary, "date": human_date(site, row)}
              for row, summary in found]
    return site.page("archive.html", title="Archive", issues=listed, feed=f"{site.base}/archive.atom")


@routes.get("/archive.atom")
def feed(site: SiteDep, wiring: WiringDep) -> Response:
    """The Atom feed of the latest sent issues, each entry carrying the issue's web version."""
    with session_scope(site.engine) as session:
        rows = [row for row, _ in archive.sent_previews(session, limit=FEED_ENTRIES)]
    contents = {row.number: found.content for row in rows
                if (found := make_web_version(site, lambda: wiring.renderer, row.number)) is not None}
    return Response(atom(site, rows, contents), media_type="application/atom+xml")


@routes.get("/archive/{number}", response_class=HTMLResponse)
def web_version(number: IssueNumber, request: Request, site: SiteDep, wiring: WiringDep) -> HTMLResponse:
    """Sent issue ``number`` as a web page with no personal link in it; the site's 404 page when not sent."""
    found = make_web_version(site, lambda: wiring.renderer, number)
    if found is None:
        return error_page(request, 404)
    return HTMLResponse(found.page, headers=WEB_VERSION_HEADERS)


def human_date(site: Site, row: IssueRow) -> str:
    """The day issue ``row`` went out in the publication's zone, as readers write it: ``24 November 2026``."""
    moment = row.sent_at or row.created_at
    day = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(site.settings.zone)
    return f"{day.day} {day:%B %Y}"


def atom(site: Site, issues: Sequence[IssueRow], contents: dict[int, str] | None = None) -> bytes:
    """An Atom 1.0 feed of sent issues, newest first; ``contents`` holds each issue's HTML by number."""
    ET.register_namespace("", ATOM)
    root = ET.Element(f"{{{ATOM}}}feed")
    _text(root, "title", site.settings.publication_name)
    _text(root, "id", f"{site.base}/archive")
    newest = max((i.sent_at or i.created_at for i in issues), default=site.clock.now())
    _text(root, "updated", _stamp(newest))
    ET.SubElement(root, f"{{{ATOM}}}link", href=f"{site.base}/archive.atom", rel="self")
    ET.SubElement(root, f"{{{ATOM}}}link", href=f"{site.base}/archive", rel="alternate")
    author = ET.SubElement(root, f"{{{ATOM}}}author")
    _text(author, "name", site.settings.publication_name)
    for issue in issues:
        entry = ET.SubElement(root, f"{{{ATOM}}}entry")
        _text(entry, "title", f"#{issue.number} ({issue.week}): {issue.subject}")
        _text(entry, "id", f"{site.base}/archive/{issue.number}")
        _text(entry, "updated", _stamp(issue.sent_at or issue.created_at))
        ET.SubElement(entry, f"{{{ATOM}}}link", href=f"{site.base}/archive/{issue.number}", rel="alternate")
        if contents and issue.number in contents:
            ET.SubElement(entry, f"{{{ATOM}}}content", type="html").text = contents[issue.number]
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document


def _text(parent: ET.Element, tag: str, text: str) -> None:
    ET.SubElement(parent, f"{{{ATOM}}}{tag}").text = text


def _stamp(moment: datetime) -> str:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
