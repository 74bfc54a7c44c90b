"""What routes get from the app, as FastAPI dependencies: the collaborators ``create_app`` put on ``app.state``.

They are ``async`` though they await nothing: FastAPI runs a plain ``def`` dependency on the thread pool, a hop
there and back for every request that only reads an attribute (a third of a one-click unsubscribe's time on the
event loop, and a thread taken from the routes' blocking work).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from newsletter.web.site import Site
from newsletter.wiring import Wiring


async def site(request: Request) -> Site:
    """The app's shared pages, CSRF, limits and mail (built once by ``create_app``)."""
    found: Site = request.app.state.site
    return found


async def wiring(request: Request) -> Wiring:
    """The process's composition object: engine, recipients, envelope, renderer, clock."""
    found: Wiring = request.app.state.wiring
    return found


SiteDep = Annotated[Site, Depends(site)]
WiringDep = Annotated[Wiring, Depends(wiring)]
