"""Reader votes: the page a digest's "Your call: Ship · Skip" link opens, the POST that records the vote, and the
running counts as JSON.

``GET /vote/{comparison}/{tool}/{choice}/{voter token}`` shows "Your call on Tool: Ship" with a button and changes
nothing (HEAD answers as GET): mail security gateways and some clients fetch every link in a message. Only the
button's POST, with the CSRF token of the page, records the vote; the answer shows the comparison's running result,
panel against readers, and a link to the comparison page. A link is refused with a clear page and no change when its
token is tampered with, its reader is no longer active (unsubscribed, bounced, complained, erased) or their email of
that issue did not carry this link (``votes.offered``), or it names an unknown tool or choice.

``GET /votes.json``: reader votes per comparison and tool (``vote_figures.export``), cacheable, counts only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse

from newsletter import vote_figures, votes
from newsletter.db import session_scope
from newsletter.errors import SubscriberError
from newsletter.statuses import SubscriberStatus
from newsletter.values import Comparison, Side
from newsletter.web.deps import SiteDep
from newsletter.web.site import Site
from subscribers import service
from subscribers.tokens import TokenError

JSON_CACHE = "public, max-age=300"  # the counts move slowly; a CDN or the site may keep them five minutes
routes = APIRouter()


@dataclass(frozen=True, slots=True)
class Ballot:
    """A vote link that may vote: whose, from which issue, on which tool of which comparison, which way."""

    subscriber_id: int
    issue_number: int
    comparison: Comparison
    side: Side
    choice: votes.Choice


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a vote link cannot vote, as the page says it."""

    status: int
    title: str
    message: str


BAD_LINK = Refusal(400, "Link not valid", "This vote link was cut short or changed on the way. Use the Ship or Skip "
                                          "link in your most recent issue.")
NOT_READER = Refusal(403, "Vote not taken", "Votes come from subscribers' own links, and this one's reader no longer "
                                            "gets the newsletter, so it cannot vote.")
NOT_OFFERED = Refusal(404, "Vote not taken", "This link does not match anything in the issue it came from: no such "
                                             "tool or comparison was in that email.")
NO_CHOICE = Refusal(404, "Vote not taken", "A vote link ends in ship or skip, and this one ends in neither. Use the "
                                           "Ship or Skip link in your issue.")


@routes.get("/vote/{comparison}/{tool}/{choice}/{token}", response_class=HTMLResponse)
def ballot_page(comparison: str, tool: str, choice: str, token: str, request: Request, site: SiteDep) -> HTMLResponse:
    """The button that casts this vote; changes nothing (a preview link says it is one)."""
    if token == votes.PREVIEW_VOTER and choice in votes.CHOICES:
        return site.page("vote.html", title="Preview", preview=True, choice=choice.capitalize())
    found = ballot(site, comparison, tool, choice, token)
    if isinstance(found, Refusal):
        return refused(site, found)
    with session_scope(site.engine) as session:
        current = votes.reader_vote(session, found.subscriber_id, comparison, tool)
    return button_page(site, request, found, current=current)


@routes.post("/vote/{comparison}/{tool}/{choice}/{token}", response_class=HTMLResponse)
async def cast(comparison: str, tool: str, choice: str, token: str, request: Request, site: SiteDep) -> HTMLResponse:
    """Record the vote (the latest counts) when the form's CSRF token matches; answer with the running result."""
    form = await request.form()
    submitted = form.get("csrf")
    # The checks and the write wait on the database: off the event loop, so a burst of votes holds up no other page.
    return await site.in_lane(record_vote, site, request, (comparison, tool, choice, token),
                                   submitted if isinstance(submitted, str) else None)


def record_vote(site: Site, request: Request, link: tuple[str, str, str, str], submitted: str | None) -> HTMLResponse:
    """The POST's work: refuse, ask again (a bad CSRF token), or record the vote and show the result."""
    comparison, tool, choice, token = link
    found = ballot(site, comparison, tool, choice, token)
    if isinstance(found, Refusal):
        return refused(site, found)
    if not site.csrf_ok(request, submitted):
        return button_page(site, request, found, message="The form expired; please press the button again.",
                           status=400)
    with session_scope(site.engine) as session:
        votes.record(session, subscriber_id=found.subscriber_id, issue_number=found.issue_number,
                     comparison=comparison, tool=tool, choice=found.choice, now=site.clock.now())
    return result_page(site, request, found, token)


def button_page(site: Site, request: Request, found: Ballot, *, current: str | None = None, message: str = "",
                status: int = 200) -> HTMLResponse:
    """The page with the button that casts ``found`` (``current``: the reader's vote so far)."""
    return site.page("vote.html", status, request=request, title=f"Your call on {found.side.tool.name}",
                     preview=False, tool=found.side.tool.name, choice=found.choice.capitalize(), current=current,
                     action=request.url.path, message=message)


def ballot(site: Site, comparison: str, tool: str, choice: str, token: str) -> Ballot | Refusal:
    """What this vote link may do: a Ballot, or why not. Reads only."""
    chosen = votes.choice_of(choice)
    if chosen is None:
        return NO_CHOICE
    try:
        subscriber_id, issue_number = site.signer.read_voter(token)
        reader = service.get(site.engine, subscriber_id)
    except TokenError:
        return BAD_LINK
    except SubscriberError:
        return NOT_READER
    if reader.status != SubscriberStatus.ACTIVE:
        return NOT_READER
    with session_scope(site.engine) as session:
        found = vote_figures.comparisons_by_slug(session, [comparison]).get(comparison)
        side = next((s for s in found.sides if s.tool.slug == tool), None) if found else None
        if found is None or side is None or not votes.offered(
                session, subscriber_id=subscriber_id, issue_number=issue_number, comparison=comparison, tool=tool,
                choice=choice):
            return NOT_OFFERED
    return Ballot(subscriber_id, issue_number, found, side, chosen)


def result_page(site: Site, request: Request, done: Ballot, token: str) -> HTMLResponse:
    """The vote recorded: the comparison's panel and readers per tool, a way to change it, the comparison page."""
    slug = done.comparison.slug
    with session_scope(site.engine) as session:
        standing = vote_figures.standing_of(session, done.comparison, margin=site.settings.vote_disagreement_points)
    other = "skip" if done.choice == "ship" else "ship"
    return site.page("vote.html", request=request, title="Vote recorded", preview=False, recorded=True,
                     tool=done.side.tool.name, choice=done.choice.capitalize(), standing=standing,
                     comparison=done.comparison.title, other=other.capitalize(),
                     other_action=f"/vote/{slug}/{done.side.tool.slug}/{other}/{token}",
                     page_url=f"{str(site.settings.site_url).rstrip('/')}/{slug}")


def refused(site: Site, why: Refusal) -> HTMLResponse:
    """The page of a vote link that cannot vote; nothing was changed."""
    return site.page("vote_refused.html", why.status, title=why.title, message=why.message)


@routes.get("/votes.json")
def votes_json(site: SiteDep, since: str | None = None) -> JSONResponse:
    """Reader votes per comparison and tool (``since``: votes last cast on or after that day, YYYY-MM-DD)."""
    try:
        start = vote_figures.day_start(since) if since else None
    except ValueError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    with session_scope(site.engine) as session:
        document: dict[str, Any] = vote_figures.export(session, since=start, now=site.clock.now())
    return JSONResponse(document, headers={"Cache-Control": JSON_CACHE})

