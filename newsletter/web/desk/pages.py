"""The desk's collaborators (the site and the sign-in gate) and how a desk page is rendered."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse

from newsletter.catalog.sync import latest_warning
from newsletter.db import session_scope
from newsletter.web.desk.auth import Gate
from newsletter.web.site import Site

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
        with session_scope(self.site.engine) as session:
            warning = latest_warning(session)
        response = self.site.page(f"editor/{name}", status, request=request, editor=self.gate.editor(request),
                                  catalog_warning=warning, **values)
        response.headers["Content-Security-Policy"] = DESK_CSP
        return response


async def desk(request: Request) -> Desk:
    """The app's desk (built once by ``create_app``); ``async`` so as not to take a thread (see ``web.deps``)."""
    found: Desk = request.app.state.desk
    return found


DeskDep = Annotated[Desk, Depends(desk)]
