"""The web app (FastAPI): reader pages, provider webhooks, the public archive and the editor's desk.

``create_app`` is the web entry point's assembly: it gets the collaborators from ``newsletter.wiring``, puts what
routes need on ``app.state`` (routes read them through the small dependencies in ``deps``), includes each
audience's router and adds the middleware every answer passes through: a body cap, HEAD as GET, error pages and
the security headers.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio.to_thread
import httpx
from fastapi import FastAPI
from sqlalchemy.engine import Engine

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
SQLITE_ROUTE_THREADS = 4
ANYIO_THREADS = 40
HSTS = {"Strict-Transport-Security": "max-age=31536000; includeSubDomains"}
ROUTERS = (health.routes, redirect.routes, reader.routes, provider_hooks.routes, archive.routes, sign_in.routes,
           dashboard.routes, issue_page.routes, issue_actions.routes, votes.routes)


def security_headers_for(settings: Settings) -> dict[str, str]:
    """The headers of every answer; HSTS only when the app is served over https (never for http://localhost)."""
    https = str(settings.public_url).startswith("https://")
    return SECURITY_HEADERS | HSTS if https else dict(SECURITY_HEADERS)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Serve with as many route threads as the database can use, then close the app's collaborators."""
    anyio.to_thread.current_default_thread_limiter().total_tokens = route_threads(app.state.engine)
    try:
        yield
    finally:
        app.state.site.close()  # after the mail thread's last email: it waits for the send under way
        app.state.wiring.close()


def route_threads(engine: Engine) -> int:
    """How many threads run the routes' blocking work (AnyIO's default is 40).

    SQLite takes one writer at a time (queued by ``sqlite_writers``), so past a few threads more only contend for
    the GIL: one-click unsubscribes measured 305/s with 40 threads, 397/s with 4, 433/s with 1 (``bench/web.py``).
    On PostgreSQL a thread waits on the network with the GIL released and the server takes writers side by side,
    so AnyIO's default stays.
    """
    return SQLITE_ROUTE_THREADS if engine.dialect.name == "sqlite" else ANYIO_THREADS


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
    app.add_middleware(error_pages.SecurityHeaders, security=app.state.security_headers)  # outermost
    return app


def app_from_environment() -> FastAPI:
    """The app with settings from the environment: the factory each uvicorn worker process calls."""
    settings = load_settings()
    logs.configure(settings)
    return served(create_app(settings))


def served(app: FastAPI) -> FastAPI:
    """``app`` as a server process runs it: what is built so far (routes, templates, mappers, imports) lives as
    long as the process, so the cyclic collector stops scanning it (``gc.freeze``); its full passes over those
    objects were a tenth of a busy server's time. Not for tests, which build and drop many apps."""
    gc.freeze()
    return app
