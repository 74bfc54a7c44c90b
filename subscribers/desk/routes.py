"""Desk routes: sign-in and sign-out, the issues list with figures and the subscriber chart."""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from newsletter import issues
from newsletter.catalog.sync import latest_warning
from subscribers.desk import issue_page
from subscribers.desk.auth import Gate
from subscribers.desk.chart import subscriber_chart
from subscribers.desk.figures import IssueFigures, subscribers_over_time, unsubscribed_since
from subscribers.site import Site
from subscribers.store import count_by_status

# The issue page frames its own previews; everything else keeps the app's strict policy.
DESK_CSP = ("default-src 'none'; style-src 'unsafe-inline'; frame-src 'self'; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'")


class Desk:
    """The desk's collaborators: the site, the gate, and how to render a page for a signed-in editor."""

    def __init__(self, site: Site, gate: Gate | None = None) -> None:
        self.site = site
        self.gate = gate or Gate(site)

    def page(self, name: str, request: Request, status: int = 200, **values: Any) -> HTMLResponse:
        """A desk page with the CSRF token, the editor's name and the standing catalog warning."""
        with Session(self.site.engine) as session:
            warning = latest_warning(session)
        response = self.site.page(f"editor/{name}", status, request=request, editor=self.gate.editor(request),
                                  catalog_warning=warning, **values)
        response.headers["Content-Security-Policy"] = DESK_CSP
        return response


def router(site: Site, *, gate: Gate | None = None) -> APIRouter:
    """The desk's routes bound to ``site``; ``gate`` replaces the default one (tests: a clock, a lower cost)."""
    desk = Desk(site, gate)
    routes = APIRouter(prefix="/editor")

    @routes.get("/login", response_class=HTMLResponse)
    def login_page(request: Request) -> HTMLResponse:
        return desk.page("login.html", request, title="Editor sign-in", message="")

    @routes.post("/login")
    async def login(request: Request) -> Response:
        form = await request.form()
        name, password = str(form.get("name") or "")[:100], str(form.get("password") or "")[:1000]
        if not site.csrf_ok(request, str(form.get("csrf") or "")):
            return desk.page("login.html", request, 400, title="Editor sign-in",
                             message="The form expired; sign in again.")
        if not desk.gate.attempts.allow(site.client_ip(request)):
            return desk.page("login.html", request, 429, title="Editor sign-in",
                             message="Too many attempts from your address; wait an hour.")
        attempt = desk.gate.login(name, password)
        if attempt.paused_until is not None:  # said alike for every name, an editor's or not
            minutes = math.ceil((attempt.paused_until - desk.gate.clock()).total_seconds() / 60)
            return desk.page("login.html", request, 429, title="Editor sign-in",
                             message=f"Too many failed sign-ins under this name. Sign-in under it is paused; "
                                     f"try again in {minutes} minute{'s' if minutes != 1 else ''}.")
        if not attempt.signed_in:
            return desk.page("login.html", request, 401, title="Editor sign-in",
                             message="That name and password do not match an editor.")
        response = RedirectResponse("/editor", status_code=303)
        desk.gate.open_session(response, name.strip())
        return response

    @routes.post("/logout")
    async def logout(request: Request) -> Response:
        form = await request.form()
        response = RedirectResponse("/editor/login", status_code=303)
        if site.csrf_ok(request, str(form.get("csrf") or "")):
            desk.gate.close_session(request, response)
        return response

    @routes.get("", response_class=HTMLResponse)
    def issue_list(request: Request) -> Response:
        if desk.gate.editor(request) is None:
            return RedirectResponse("/editor/login", status_code=303)
        with Session(site.engine) as session:
            summaries = issues.list_issues(session)
            left = unsubscribed_since(session)
            points = subscribers_over_time(session)
            active = count_by_status(session).get("active", 0)
        rows = [(s, IssueFigures.of(s.deliveries, left.get(s.number, 0))) for s in summaries]
        return desk.page("issues.html", request, title="Issues", rows=rows, chart=subscriber_chart(points),
                         points=points, active=active)

    issue_page.mount(routes, desk)
    return routes
