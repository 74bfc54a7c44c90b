"""The web app (FastAPI): reader pages, provider webhooks, the public archive and the editor's desk.

``create_app`` is the web entry point's assembly: it gets the collaborators from ``newsletter.wiring``, puts what
routes need on ``app.state`` (routes read them through the small dependencies in ``deps``), includes each
audience's router and adds the middleware every answer passes through: a body cap, HEAD as GET, error pages and
the security headers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import Response

from newsletter import logs, wiring
from newsletter.config import Settings, load_settings
from newsletter.providers.base import Provider
from newsletter.web import archive, error_pages, health, limits, provider_hooks, reader, redirect, votes
from newsletter.web.desk import dashboard, issue_actions, issue_page, sign_in
from newsletter.web.desk.auth import Gate
from newsletter.web.desk.pages import Desk
from newsletter.web.site import Site
from newsletter.web.zone_script import ZONE_SCRIPT_SOURCE
from subscribers import sns

SECURITY_HEADERS = {
    # The one script allowed is the sign-up form's time-zone filler, by hash (see zone_script).
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               f"script-src {ZONE_SCRIPT_SOURCE}; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
HSTS = {"Strict-Transport-Security": "max-age=31536000; includeSubDomains"}
ROUTERS = (health.routes, redirect.routes, reader.routes, provider_hooks.routes, archive.routes, sign_in.routes,
           dashboard.routes, issue_page.routes, issue_actions.routes, votes.routes)


def security_headers_for(settings: Settings) -> dict[str, str]:
    """The headers of every answer; HSTS only when the app is served over https (never for http://localhost)."""
    https = str(settings.public_url).startswith("https://")
    return SECURITY_HEADERS | HSTS if https else dict(SECURITY_HEADERS)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Serve, then close the app's collaborators (the database connections)."""
    yield
    app.state.wiring.close()


def create_app(settings: Settings, *, provider: Provider | None = None,
               gate: Callable[[Site], Gate] | None = None, sns_transport: httpx.BaseTransport | None = None) -> FastAPI:
    """The app for ``settings``; confirmation emails go through ``provider`` (default: the configured one).

    ``gate`` builds the desk's sign-in gate from the site (tests: a clock, a lower scrypt cost); ``sns_transport``
    carries the SNS certificate and confirmation fetches (tests: a transport trusting a test certificate). Refuses
    to start on an out-of-date schema.
    """
    parts = wiring.build(settings, provider=provider)
    try:
        site = Site.of(parts)  # opens the engine, which checks the schema
    except BaseException:
        parts.close()
        raise

    app = FastAPI(title=settings.publication_name, lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.wiring, app.state.site = parts, site
    app.state.engine, app.state.settings = parts.engine, settings  # what the health and metrics routes read
    app.state.desk = Desk(site, gate(site) if gate else None)
    signer = parts.signer if settings.track_readers else None  # untracked: no reader is ever read from a link
    app.state.redirects = redirect.Redirects(parts.engine, parts.clicks, signer=signer, clock=parts.clock)
    app.state.sns = sns.endpoint_for(settings.sns_topic_arns, transport=sns_transport)  # one certificate cache
    app.state.webhook_gates = provider_hooks.gates(settings, app.state.sns)
    app.add_middleware(limits.BodyLimit)  # inside the security headers, so a 413 carries them too
    for router in ROUTERS:
        app.include_router(router)
    error_pages.install(app, security_headers_for(settings))
    app.middleware("http")(security_headers)
    return app


async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """Add the app's security headers to every answer that did not set its own."""
    response = await call_next(request)
    error_pages.secure(response.headers, request.app.state.security_headers)
    return response


def app_from_environment() -> FastAPI:
    """The app with settings from the environment: the factory each uvicorn worker process calls."""
    settings = load_settings()
    logs.configure(settings)
    return create_app(settings)
