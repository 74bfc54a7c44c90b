"""What an editor changes on the issue page: the note and headers, the lineup, test sends, approval and status.

Each is a POST with the CSRF token; it re-renders on the server and redirects back to the issue page
(post/redirect/get), or shows the page again with what went wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import cast
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from newsletter import desk as core
from newsletter import issues
from newsletter.db import session_scope
from newsletter.editing import MOVES, Edits, Move, clean_header, clean_note
from newsletter.errors import IssueError, IssueNotFound, NewsletterError
from newsletter.web.deps import WiringDep
from newsletter.web.desk.issue_page import show
from newsletter.web.desk.pages import Desk, DeskDep
from newsletter.web.site import IssueNumber
from newsletter.wiring import Wiring
from subscribers.store import normalise_address

# An action gets the desk, the wiring, the issue number, the form and the editor's name; it returns what it did.
Action = Callable[[Desk, Wiring, int, FormData, str], str]
routes = APIRouter(prefix="/editor")


@routes.post("/issues/{number}/edit")
async def edit(number: IssueNumber, request: Request, desk: DeskDep, wiring: WiringDep) -> Response:
    """Change the issue's note, subject and preheader, and re-render it."""
    return await act(desk, wiring, number, request, edit_texts)


@routes.post("/issues/{number}/lineup")
async def arrange(number: IssueNumber, request: Request, desk: DeskDep, wiring: WiringDep) -> Response:
    """Drop, restore or move one comparison of the issue, and re-render it."""
    return await act(desk, wiring, number, request, move_comparison)


@routes.post("/issues/{number}/test")
async def test(number: IssueNumber, request: Request, desk: DeskDep, wiring: WiringDep) -> Response:
    """Send the issue as one cohort gets it to the given addresses."""
    return await act(desk, wiring, number, request, send_test)


@routes.post("/issues/{number}/status")
async def status(number: IssueNumber, request: Request, desk: DeskDep, wiring: WiringDep) -> Response:
    """Approve, schedule, pause, resume or cancel the issue."""
    return await act(desk, wiring, number, request, change_status)


@routes.post("/issues/{number}/cancel", response_class=HTMLResponse)
async def confirm_cancel(number: IssueNumber, request: Request, desk: DeskDep) -> Response:
    """The confirmation step before cancelling: says what cancelling does, and changes nothing itself."""
    # A second page rather than a script's confirm(): it works without JavaScript, and a stray click on the
    # issue page (next to "Approve") cancels nothing.
    if desk.gate.editor(request) is None:
        return RedirectResponse("/editor/login", status_code=303)
    form = await request.form()
    if not exists(desk, number):
        return desk.page("missing.html", request, 404, title="No such issue")
    if not desk.site.csrf_ok(request, str(form.get("csrf") or "")):
        return RedirectResponse(f"/editor/issues/{number}", status_code=303)
    with session_scope(desk.site.engine) as session:
        row = issues.get_issue(session, number)
        status, queued = row.status, issues.delivery_counts(session, row.id).get("queued", 0)
    return desk.page("confirm_cancel.html", request, title=f"Cancel issue {number}?", number=number,
                     issue_status=status, queued=queued, cohort=str(form.get("cohort") or issues.ALL))


async def act(desk: Desk, wiring: Wiring, number: int, request: Request, action: Action) -> Response:
    """Check the editor and the CSRF token, run ``action``, then redirect or show the error."""
    editor = desk.gate.editor(request)
    if editor is None:
        return RedirectResponse("/editor/login", status_code=303)
    form = await request.form()
    cohort = str(form.get("cohort") or issues.ALL)
    if not exists(desk, number):
        return desk.page("missing.html", request, 404, title="No such issue")
    if not desk.site.csrf_ok(request, str(form.get("csrf") or "")):
        return show(desk, wiring, number, request, cohort=cohort, error="The form expired; try again.", status=400)
    try:
        done = action(desk, wiring, number, form, editor)
    except (NewsletterError, ValueError) as exc:
        return show(desk, wiring, number, request, cohort=cohort, error=str(exc), status=400)
    return RedirectResponse(f"/editor/issues/{number}?cohort={quote(cohort)}&done={done}", status_code=303)


def exists(desk: Desk, number: int) -> bool:
    """Whether issue ``number`` exists."""
    try:
        with session_scope(desk.site.engine) as session:
            issues.get_issue(session, number)
    except IssueNotFound:
        return False
    return True


def edit_texts(desk: Desk, wiring: Wiring, number: int, form: FormData, _editor: str) -> str:
    """Store the form's note, subject and preheader (cleaned) and re-render the issue."""
    note = clean_note(_text(form, "note"))
    subject = clean_header(_text(form, "subject"), name="subject", limit=300)
    preheader = clean_header(_text(form, "preheader"), name="preheader", limit=300)
    core.edit(desk.site.engine, number, lambda e, _shown: replace(e, note=note, subject=subject, preheader=preheader),
              renderer=wiring.renderer)
    return "edited"


def move_comparison(desk: Desk, wiring: Wiring, number: int, form: FormData, _editor: str) -> str:
    """Apply the form's move (drop, restore, up, down…) to one comparison and re-render the issue."""
    slug, move = _text(form, "slug"), _text(form, "move")
    if move not in MOVES:
        raise IssueError(f"unknown change {move!r}")

    def moved(edits: Edits, shown: tuple[str, ...]) -> Edits:
        """The edits with the move applied to the comparisons as shown."""
        return replace(edits, arrangement=edits.arrangement.moved(shown, slug, cast(Move, move)))
    core.edit(desk.site.engine, number, moved, renderer=wiring.renderer)
    return "edited"


def send_test(desk: Desk, wiring: Wiring, number: int, form: FormData, _editor: str) -> str:
    """Send a test of the form's cohort to the form's addresses (comma- or semicolon-separated)."""
    addresses = [normalise_address(a) for a in _text(form, "addresses").replace(";", ",").split(",") if a.strip()]
    core.send_test(desk.site.engine, number, addresses, cohort=str(form.get("cohort") or issues.ALL),
                   provider=desk.site.provider, envelope=wiring.envelope)
    return "tested"


def change_status(desk: Desk, wiring: Wiring, number: int, form: FormData, editor: str) -> str:
    """Do the form's ``action`` to the issue; what was done, for the page's message."""
    action, engine = _text(form, "action"), desk.site.engine
    if action == "approve":
        core.approve(engine, number, editor=editor)
        return "approved"
    if action == "schedule":
        core.approve(engine, number, editor=editor, send_at=send_time(desk, _text(form, "send_at")))
        return "scheduled"
    if action == "pause":
        core.pause(engine, number)
        return "paused"
    if action == "resume":
        core.resume(engine, number, recipients=wiring.recipients, local=wiring.send_options.local, clock=wiring.clock)
        return "resumed"
    if action == "cancel":
        if _text(form, "confirmed") != "yes":  # only the confirmation page sends this
            raise IssueError("cancelling is final: press “Cancel issue” and confirm on the page it opens")
        core.cancel(engine, number)
        return "cancelled"
    raise IssueError(f"unknown action {action!r}")


def send_time(desk: Desk, text: str) -> datetime:
    """A ``datetime-local`` value in the publication's zone, as UTC; it may not lie in the past."""
    settings = desk.site.settings
    try:
        local = datetime.fromisoformat(text)
    except ValueError:
        raise IssueError("give the send time as date and time, e.g. 2026-11-24T07:00") from None
    try:
        moment = local.replace(tzinfo=settings.zone).astimezone(UTC)
    except OverflowError:  # the first or last hours of year 1 or 9999, shifted past the calendar's end
        raise IssueError(f"{text} is at the end of the calendar; pick a time in the coming weeks") from None
    if (desk.site.clock.now() - moment).total_seconds() > 300:
        raise IssueError(f"{text} ({settings.timezone}) has passed; pick a time ahead")
    return moment


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value[:20000] if isinstance(value, str) else ""
