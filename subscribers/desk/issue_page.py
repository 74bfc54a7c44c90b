"""The issue page of the desk: previews, text version, cohort picker, checks, edits, tests, approval, figures.

Every change is a POST with the CSRF token that re-renders on the server and redirects back (post/redirect/get),
so the previews show the change at once and the page works without JavaScript.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session, select
from starlette.datastructures import FormData

from newsletter import desk as core
from newsletter import issues
from newsletter.checks import check_issue
from newsletter.dispatch import personalise
from newsletter.editing import MOVES, Edits, Move, clean_header, clean_note
from newsletter.errors import IssueError, IssueNotFound, NewsletterError
from newsletter.models import IssueRow
from newsletter.publishing import preview_recipient
from newsletter.render import PreparedEmail
from subscribers.desk.figures import IssueFigures, unsubscribed_since
from subscribers.site import IssueNumber
from subscribers.store import normalise_address

if TYPE_CHECKING:
    from subscribers.desk.routes import Desk

DONE = {
    "edited": "Saved; the previews below are re-rendered.", "approved": "Approved.", "scheduled": "Scheduled.",
    "paused": "Paused.", "resumed": "Resumed: the scheduler (or the workers) carries the send on.",
    "cancelled": "Cancelled.", "tested": "Test sent.",
}
PREVIEW_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
                                              "frame-ancestors 'self'; base-uri 'none'",
                   "X-Frame-Options": "SAMEORIGIN"}


def mount(routes: APIRouter, desk: Desk) -> None:
    """Add the issue routes to the desk's router."""
    site = desk.site

    def wiring() -> Any:
        from newsletter import wiring as root  # the composition root; imported late, as in subscribers.web

        return root

    envelope = wiring().envelope_for(site.settings)
    stand_in = preview_recipient(envelope)

    def rendered(number: int) -> dict[str, Any]:
        with Session(site.engine) as session:
            return issues.rendered_emails(session, issues.get_issue(session, number))

    def exists(number: int) -> bool:
        with Session(site.engine) as session:
            return session.exec(select(IssueRow.id).where(IssueRow.number == number)).first() is not None

    def filled(number: int, snapshot: Any) -> tuple[str, str]:
        message = personalise(PreparedEmail.of(snapshot), stand_in, delivery_id=0, issue_number=number,
                              envelope=envelope)
        return message.html, message.text

    @routes.get("/issues/{number}/preview", response_class=HTMLResponse)
    def preview(number: IssueNumber, request: Request, cohort: str = issues.ALL) -> Response:
        if desk.gate.editor(request) is None:
            return Response("sign in first", status_code=401)
        try:
            snapshots = rendered(number)
        except IssueNotFound:
            return Response("no such issue", status_code=404)
        if cohort not in snapshots:
            return Response("no such cohort in this issue", status_code=404)
        return HTMLResponse(filled(number, snapshots[cohort])[0], headers=PREVIEW_HEADERS)

    @routes.get("/issues/{number}", response_class=HTMLResponse)
    def issue(number: IssueNumber, request: Request, cohort: str = issues.ALL, done: str = "") -> Response:
        if desk.gate.editor(request) is None:
            return RedirectResponse("/editor/login", status_code=303)
        try:
            return show(number, request, cohort=cohort, message=DONE.get(done, ""))
        except IssueNotFound:
            return desk.page("missing.html", request, 404, title="No such issue")

    def show(number: int, request: Request, *, cohort: str = issues.ALL, message: str = "", error: str = "",
             status: int = 200) -> HTMLResponse:
        with Session(site.engine) as session:
            row = issues.get_issue(session, number)
            snapshots = issues.rendered_emails(session, row)
            counts = issues.delivery_counts(session, row.id)
            left = unsubscribed_since(session, number).get(number, 0)
            edits = core.edits_of(row)
            info = {"number": row.number, "week": row.week, "status": row.status, "subject": row.subject,
                    "send_at": row.send_at, "approved_by": row.approved_by, "error": row.error}
        cohort = cohort if cohort in snapshots else issues.ALL
        source = wiring().directory_for(site.settings, site.engine)
        sizes = {c.key: size for c, size in source.cohorts()}
        fills = {key: filled(number, snap) for key, snap in snapshots.items()}
        hosts = [h for h in (urlsplit(str(site.settings.site_url)).hostname, urlsplit(site.base).hostname) if h]
        empty = [(key, size) for key, size in sizes.items() if key not in snapshots]
        findings = check_issue(snapshots, filled_html={k: v[0] for k, v in fills.items()}, allowed_hosts=hosts,
                               empty_cohorts=empty)
        try:
            lineup = core.lineup(site.engine, number, site_url=str(site.settings.site_url),
                                 limit=site.settings.digest_limit)
        except IssueError as exc:
            lineup, error = [], error or str(exc)
        return desk.page("issue.html", request, status, title=f"Issue {number}", issue=info, edits=edits,
                         snapshot=snapshots[cohort], cohort=cohort, cohorts=sorted(snapshots), sizes=sizes,
                         text=fills[cohort][1], findings=findings, lineup=lineup, message=message, error=error,
                         figures=IssueFigures.of(counts, left), editable=info["status"] in issues.EDITABLE,
                         zone=site.settings.timezone, quote=quote)

    async def act(number: int, request: Request, action: Any) -> Response:
        """Check the editor and the CSRF token, run ``action(form, editor)``, then redirect or show the error."""
        editor = desk.gate.editor(request)
        if editor is None:
            return RedirectResponse("/editor/login", status_code=303)
        form = await request.form()
        cohort = str(form.get("cohort") or issues.ALL)
        if not exists(number):
            return desk.page("missing.html", request, 404, title="No such issue")
        if not site.csrf_ok(request, str(form.get("csrf") or "")):
            return show(number, request, cohort=cohort, error="The form expired; try again.", status=400)
        try:
            done = action(form, editor)
        except (NewsletterError, ValueError) as exc:
            return show(number, request, cohort=cohort, error=str(exc), status=400)
        return RedirectResponse(f"/editor/issues/{number}?cohort={quote(cohort)}&done={done}", status_code=303)

    def renderer() -> core.Renderer:
        return cast(core.Renderer, wiring().renderer_for(site.settings, site.engine))

    @routes.post("/issues/{number}/edit")
    async def edit(number: IssueNumber, request: Request) -> Response:
        def change(form: FormData, _editor: str) -> str:
            note = clean_note(_text(form, "note"))
            subject = clean_header(_text(form, "subject"), name="subject", limit=300)
            preheader = clean_header(_text(form, "preheader"), name="preheader", limit=300)
            core.edit(site.engine, number, lambda e, _shown: replace(e, note=note, subject=subject,
                                                                     preheader=preheader), renderer=renderer())
            return "edited"
        return await act(number, request, change)

    @routes.post("/issues/{number}/lineup")
    async def arrange(number: IssueNumber, request: Request) -> Response:
        def change(form: FormData, _editor: str) -> str:
            slug, move = _text(form, "slug"), _text(form, "move")
            if move not in MOVES:
                raise IssueError(f"unknown change {move!r}")

            def moved(edits: Edits, shown: tuple[str, ...]) -> Edits:
                return replace(edits, arrangement=edits.arrangement.moved(shown, slug, cast(Move, move)))
            core.edit(site.engine, number, moved, renderer=renderer())
            return "edited"
        return await act(number, request, change)

    @routes.post("/issues/{number}/test")
    async def test(number: IssueNumber, request: Request) -> Response:
        def send(form: FormData, _editor: str) -> str:
            addresses = [normalise_address(a) for a in _text(form, "addresses").replace(";", ",").split(",")
                         if a.strip()]
            core.send_test(site.engine, number, addresses, cohort=str(form.get("cohort") or issues.ALL),
                           provider=site.provider, envelope=envelope)
            return "tested"
        return await act(number, request, send)

    @routes.post("/issues/{number}/status")
    async def status(number: IssueNumber, request: Request) -> Response:
        def change(form: FormData, editor: str) -> str:
            action = _text(form, "action")
            if action == "approve":
                core.approve(site.engine, number, editor=editor)
                return "approved"
            if action == "schedule":
                core.approve(site.engine, number, editor=editor, send_at=_moment(_text(form, "send_at"), site))
                return "scheduled"
            if action == "pause":
                core.pause(site.engine, number)
                return "paused"
            if action == "resume":
                core.resume(site.engine, number, recipients=wiring().directory_for(site.settings, site.engine))
                return "resumed"
            if action == "cancel":
                core.cancel(site.engine, number)
                return "cancelled"
            raise IssueError(f"unknown action {action!r}")
        return await act(number, request, change)


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value[:20000] if isinstance(value, str) else ""


def _moment(text: str, site: Any) -> datetime:
    """A ``datetime-local`` value in the publication's zone, as UTC; it may not lie in the past."""
    try:
        local = datetime.fromisoformat(text)
    except ValueError:
        raise IssueError("give the send time as date and time, e.g. 2026-11-24T07:00") from None
    try:
        moment = local.replace(tzinfo=site.settings.zone).astimezone(UTC)
    except OverflowError:  # the first or last hours of year 1 or 9999, shifted past the calendar's end
        raise IssueError(f"{text} is at the end of the calendar; pick a time in the coming weeks") from None
    if (datetime.now(UTC) - moment).total_seconds() > 300:
        raise IssueError(f"{text} ({site.settings.timezone}) has passed; pick a time ahead")
    return moment
