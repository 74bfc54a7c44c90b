"""Desk sign-in and sign-out: the login form, a limit per address, a pause per name, a session cookie."""

from __future__ import annotations

import math
from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from newsletter.web.desk.pages import Desk, DeskDep

routes = APIRouter(prefix="/editor")


@routes.get("/login", response_class=HTMLResponse)
def login_page(request: Request, desk: DeskDep) -> HTMLResponse:
    """The sign-in form."""
    return desk.page("login.html", request, title="Editor sign-in", message="")


@routes.post("/login")
async def login(request: Request, desk: DeskDep) -> Response:
    """Check the name and password; on success open a session and go to the issues list."""
    form = await request.form()
    name, password = str(form.get("name") or "")[:100], str(form.get("password") or "")[:1000]
    if not desk.site.csrf_ok(request, str(form.get("csrf") or "")):
        return refused(desk, request, 400, "The form expired; sign in again.")
    if not desk.gate.attempts.allow(desk.site.client_ip(request)):
        return refused(desk, request, 429, "Too many attempts from your address; wait an hour.")
    attempt = desk.gate.login(name, password)
    if attempt.paused_until is not None:  # said alike for every name, an editor's or not
        return refused(desk, request, 429, paused_message(attempt.paused_until, desk.gate.clock.now()))
    if not attempt.signed_in:
        return refused(desk, request, 401, "That name and password do not match an editor.")
    response = RedirectResponse("/editor", status_code=303)
    desk.gate.open_session(response, name.strip())
    return response


@routes.post("/logout")
async def logout(request: Request, desk: DeskDep) -> Response:
    """End this device's session (when the form's CSRF token matches) and go to the sign-in form."""
    form = await request.form()
    response = RedirectResponse("/editor/login", status_code=303)
    if desk.site.csrf_ok(request, str(form.get("csrf") or "")):
        desk.gate.close_session(request, response)
    return response


def refused(desk: Desk, request: Request, status: int, message: str) -> HTMLResponse:
    """The sign-in form again, with ``status`` and why."""
    return desk.page("login.html", request, status, title="Editor sign-in", message=message)


def paused_message(until: datetime, now: datetime) -> str:
    """What a refused sign-in under a paused name says: in how many whole minutes to try again."""
    minutes = math.ceil((until - now).total_seconds() / 60)
    return (f"Too many failed sign-ins under this name. Sign-in under it is paused; "
            f"try again in {minutes} minute{'s' if minutes != 1 else ''}.")
