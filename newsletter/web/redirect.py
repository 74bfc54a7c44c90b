"""``GET /r/{issue}/{link}``: a link of an issue, followed to the target its link table holds, and counted.

The target is never read from the URL, so the redirect cannot send anyone anywhere the issue did not link to; an
unknown issue or link is the site's 404 page. Scanner traffic (HEAD, known scanner agents) is redirected but not
counted (``clicks.rules``); counting only appends to the click buffer, which ``clicks.recorder`` writes in
batches, so a burst never waits on the database. A link's target never changes, so each process reads it once.

With ``NEWSLETTER_TRACK_READERS=true`` the ``r`` parameter is the reader's token for the issue: a good one names
the reader; a bad, foreign or missing one still redirects, as an anonymous click. With it false (the default) no
reader is ever recorded, whatever the URL carries.
"""

from __future__ import annotations

import threading
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from newsletter import metrics
from newsletter.clicks.links import Link, find_link
from newsletter.clicks.recorder import Click, ClickRecorder
from newsletter.clicks.rules import is_scanner
from newsletter.clock import Clock
from newsletter.db import session_scope
from newsletter.web.error_pages import HEAD_REQUEST, error_page
from newsletter.web.site import IssueNumber
from subscribers.tokens import Signer, TokenError

LinkNumber = Annotated[int, PathParam(ge=1, le=2**31 - 1)]
MAX_TOKEN = 200  # a reader token is ~60 characters; anything much longer is not one, and is not even checked
HEADERS = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex, nofollow"}  # no-store: every click reaches us
routes = APIRouter()


class Redirects:
    """The redirect's collaborators: the link cache, the click recorder, the reader-token check, the clock."""

    def __init__(self, engine: Engine, clicks: ClickRecorder, *, signer: Signer | None, clock: Clock) -> None:
        self.engine, self.clicks, self.signer, self.clock = engine, clicks, signer, clock
        self._links: dict[tuple[int, int], Link] = {}  # only links that exist: unknown ids cannot grow it
        self._lock = threading.Lock()

    def cached(self, number: int, link: int) -> Link | None:
        """The link if this process has read it already."""
        return self._links.get((number, link))

    def lookup(self, number: int, link: int) -> Link | None:
        """The link from the database (kept for next time), or None when the issue has no such link."""
        with session_scope(self.engine) as session:
            found = find_link(session, number, link)
        if found is not None:
            with self._lock:
                self._links[(number, link)] = found
        return found

    def reader(self, token: str, number: int) -> int | None:
        """The subscriber a tracked token names for issue ``number``; None when untracked, bad or another issue's."""
        if self.signer is None or not token or len(token) > MAX_TOKEN:
            return None
        try:
            subscriber, issue = self.signer.read_voter(token)
        except TokenError:
            return None
        return subscriber if issue == number else None

    def count(self, link: Link, token: str, number: int) -> None:
        """Buffer one click of ``link`` (the writer applies the early rule)."""
        self.clicks.record(Click(link.issue_id, link.id, self.reader(token, number), self.clock.now()))


@routes.get("/r/{number}/{link}")
async def follow(number: IssueNumber, link: LinkNumber, request: Request, r: str = "") -> Response:
    """302 to the link's stored target, counting the click unless it is scanner traffic; 404 for an unknown link."""
    redirects: Redirects = request.app.state.redirects
    found = redirects.cached(number, link) or await run_in_threadpool(redirects.lookup, number, link)
    if found is None:
        return error_page(request, 404)
    if request.scope.get(HEAD_REQUEST) or is_scanner(request.headers.get("user-agent")):
        metrics.clicks("scanner")
    else:
        redirects.count(found, r, number)
    return RedirectResponse(found.target, status_code=302, headers=HEADERS)
