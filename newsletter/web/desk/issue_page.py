"""The issue page of the desk: previews, text version, cohort picker, checks, lineup and figures.

What the editor changes on it is ``issue_actions``: every change is a POST with the CSRF token that re-renders on
the server and redirects back here (post/redirect/get), so the previews show the change at once and the page works
without JavaScript.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup
from sqlalchemy.engine import Engine

from newsletter import desk as core
from newsletter import issues, vote_figures
from newsletter.checks import Finding, check_issue
from newsletter.clicks.chart import clicks_chart
from newsletter.db import session_scope
from newsletter.dispatch import Envelope, personalise
from newsletter.editing import Edits
from newsletter.errors import IssueError, IssueNotFound
from newsletter.publishing import preview_recipient
from newsletter.render import PreparedEmail
from newsletter.values import RenderedEmail
from newsletter.web.deps import WiringDep
from newsletter.web.desk.pages import Desk, DeskDep
from newsletter.web.site import IssueNumber
from newsletter.wiring import Wiring
from subscribers.engagement import IssueEngagement, engagement_of
from subscribers.figures import IssueFigures, unsubscribed_since, wave_lines

DONE = {
    "edited": "Saved; the previews below are re-rendered.", "approved": "Approved.", "scheduled": "Scheduled.",
    "paused": "Paused.", "resumed": "Resumed: the scheduler (or the workers) carries the send on.",
    "cancelled": "Cancelled.", "tested": "Test sent.",
}
PREVIEW_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
                                              "frame-ancestors 'self'; base-uri 'none'",
                   "X-Frame-Options": "SAMEORIGIN"}
DARK_QUERY = re.compile(r"@media\s*\(\s*prefers-color-scheme\s*:\s*dark\s*\)", re.IGNORECASE)
LIGHT_QUERY = re.compile(r"@media\s*\(\s*prefers-color-scheme\s*:\s*light\s*\)", re.IGNORECASE)
routes = APIRouter(prefix="/editor")


@dataclass(frozen=True)
class Stored:
    """What the issue page shows of one issue, read in one transaction."""

    info: dict[str, Any]
    snapshots: dict[str, RenderedEmail]
    edits: Edits
    figures: IssueFigures
    readers: IssueEngagement


@routes.get("/issues/{number}/preview", response_class=HTMLResponse)
def preview(number: IssueNumber, request: Request, desk: DeskDep, wiring: WiringDep,
            cohort: str = issues.ALL, scheme: str = "light") -> Response:
    """One cohort's HTML as a neutral reader gets it, for the page's frame (``scheme=dark``: as a client in dark
    mode shows it); plain 401/404 answers."""
    if desk.gate.editor(request) is None:
        return Response("sign in first", status_code=401)
    try:
        with session_scope(desk.site.engine) as session:
            snapshots = issues.rendered_emails(session, issues.get_issue(session, number))
    except IssueNotFound:
        return Response("no such issue", status_code=404)
    if cohort not in snapshots:
        return Response("no such cohort in this issue", status_code=404)
    html = filled(wiring.envelope, number, snapshots[cohort])[0]
    return HTMLResponse(forced_dark(html) if scheme == "dark" else html, headers=PREVIEW_HEADERS)


def forced_dark(html: str) -> str:
    """``html`` as a mail client in dark mode renders it: its dark-scheme rules always apply, light-only ones never."""
    # The frame cannot ask the browser to emulate dark mode for one document, so the media queries are rewritten.
    html = DARK_QUERY.sub("@media all", html)
    html = LIGHT_QUERY.sub("@media not all", html)
    return html.replace("<head>", '<head><meta name="color-scheme" content="dark">'
                                  "<style>:root { color-scheme: dark; }</style>", 1)


@routes.get("/issues/{number}", response_class=HTMLResponse)
def issue(number: IssueNumber, request: Request, desk: DeskDep, wiring: WiringDep, cohort: str = issues.ALL,
          done: str = "") -> Response:
    """The issue page; ``done`` names the change just made (after a redirect)."""
    if desk.gate.editor(request) is None:
        return RedirectResponse("/editor/login", status_code=303)
    try:
        return show(desk, wiring, number, request, cohort=cohort, message=DONE.get(done, ""))
    except IssueNotFound:
        return desk.page("missing.html", request, 404, title="No such issue")


def show(desk: Desk, wiring: Wiring, number: int, request: Request, *, cohort: str = issues.ALL, message: str = "",
         error: str = "", status: int = 200) -> HTMLResponse:
    """Render the issue page of ``number`` as ``cohort`` gets it; IssueNotFound when there is no such issue."""
    site, stored = desk.site, load(desk.site.engine, number)
    local = site.settings.local_delivery
    snapshots = stored.snapshots
    cohort = cohort if cohort in snapshots else issues.ALL
    sizes = {c.key: size for c, size in wiring.recipients.cohorts()}
    fills = {key: filled(wiring.envelope, number, snap) for key, snap in snapshots.items()}
    findings = findings_of(wiring, snapshots, fills, sizes)
    try:
        lineup = core.lineup(site.engine, number, site_url=str(site.settings.site_url),
                             limit=site.settings.digest_limit)
    except IssueError as exc:
        lineup, error = [], error or str(exc)
    return desk.page("issue.html", request, status, title=f"Issue {number}", issue=stored.info, edits=stored.edits,
                     snapshot=snapshots[cohort], cohort=cohort, cohorts=sorted(snapshots), sizes=sizes,
                     text=fills[cohort][1], findings=findings, lineup=lineup, message=message, error=error,
                     figures=stored.figures, readers=stored.readers, chart=chart_of(stored.readers),
                     editable=stored.info["status"] in issues.EDITABLE,
                     standings=panel_and_readers(desk, number, lineup),
                     margin=site.settings.vote_disagreement_points,
                     zone=site.settings.timezone, quote=quote, local_time=local.at.strftime("%H:%M") if local else None,
                     waves=wave_lines(site.engine, number, local=local, zone=site.settings.zone, now=site.clock.now()))


def panel_and_readers(desk: Desk, number: int, lineup: list[core.LineupEntry]) -> list[vote_figures.Standing]:
    """The issue's comparisons, panel against readers per tool, flagged past NEWSLETTER_VOTE_DISAGREEMENT_POINTS."""
    shown = [entry.slug for entry in lineup if entry.state == "shown"]
    with session_scope(desk.site.engine) as session:
        return vote_figures.standings(session, shown, margin=desk.site.settings.vote_disagreement_points,
                                      issue_number=number)


def load(engine: Engine, number: int) -> Stored:
    """The issue's fields, snapshots, edits and figures; IssueNotFound when there is no such issue."""
    with session_scope(engine) as session:
        row = issues.get_issue(session, number)
        figures = IssueFigures.of(issues.delivery_counts(session, row.id),
                                  unsubscribed_since(session, number).get(number, 0))
        info = {"number": row.number, "week": row.week, "status": row.status, "subject": row.subject,
                "send_at": row.send_at, "sent_at": row.sent_at, "approved_by": row.approved_by, "error": row.error}
        return Stored(info, issues.rendered_emails(session, row), core.edits_of(row), figures,
                      engagement_of(session, row))


def chart_of(readers: IssueEngagement) -> Markup:
    """The SVG chart of the issue's clicks per comparison (drawn from escaped text, so safe to embed)."""
    clicks = readers.clicks
    return Markup(clicks_chart(clicks.lines, title=f"Issue {readers.number}: clicks per comparison",
                               tracked=clicks.tracked))


def filled(envelope: Envelope, number: int, snapshot: RenderedEmail) -> tuple[str, str]:
    """The snapshot's HTML and text as a neutral stand-in reader gets them."""
    message = personalise(PreparedEmail.of(snapshot), preview_recipient(envelope), delivery_id=0,
                          issue_number=number, envelope=envelope)
    return message.html, message.text


def findings_of(wiring: Wiring, snapshots: dict[str, RenderedEmail], fills: dict[str, tuple[str, str]],
                sizes: dict[str, int]) -> list[Finding]:
    """The pre-send checks of the issue: links to our own hosts only, and cohorts with readers but no snapshot."""
    settings = wiring.settings
    hosts = [h for h in (urlsplit(str(settings.site_url)).hostname,
                         urlsplit(str(settings.public_url).rstrip("/")).hostname) if h]
    empty = [(key, size) for key, size in sizes.items() if key not in snapshots]
    return check_issue(snapshots, filled_html={k: v[0] for k, v in fills.items()}, allowed_hosts=hosts,
                       empty_cohorts=empty)
