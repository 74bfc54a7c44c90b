"""What routes get from the app, as FastAPI dependencies: the collaborators ``create_app`` put on ``app.state``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from newsletter.web.site import Site
from newsletter.wiring import Wiring


def site(request: Request) -> Site:
    """The app's shared pages, CSRF, limits and mail (built once by ``create_app``)."""
    found: Site = request.app.state.site
    return found


def wiring(request: Request) -> Wiring:
    """The process's composition object: engine, recipients, envelope, renderer, clock."""
    found: Wiring = request.app.state.wiring
    return found


SiteDep = Annotated[Site, Depends(site)]
WiringDep = Annotated[Wiring, Depends(wiring)]
