"""The subscriber-facing web app (FastAPI): unsubscribe pages and the RFC 8058 one-click endpoint.

``GET /unsubscribe/{token}`` shows a page with a button and never changes anything: link scanners and
prefetchers fire GETs. ``POST /unsubscribe/{token}`` unsubscribes at once and answers 200 with no redirect,
whether the body is ``List-Unsubscribe=One-Click`` (form-encoded or multipart, from a mail client) or the
page's button. The token in the URL is the only credential, signed for unsubscribing only, so the endpoint
needs no cookie and no CSRF check (RFC 8058 forbids both).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import jinja2
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response

from newsletter.config import Settings
from newsletter.db import create_schema, make_engine
from newsletter.errors import SubscriberError
from subscribers import service
from subscribers.tokens import Signer, TokenError

PAGES = Path(__file__).parent / "pages"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def create_app(settings: Settings) -> FastAPI:
    """The app for ``settings``; its database engine lives as long as the app."""
    engine = make_engine(settings.database_url)
    signer = Signer(settings.require_secret())
    pages = jinja2.Environment(loader=jinja2.FileSystemLoader(PAGES), autoescape=True)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        create_schema(engine)
        yield
        engine.dispose()

    app = FastAPI(title=settings.publication_name, lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)

    def page(name: str, status: int = 200, **values: object) -> HTMLResponse:
        html = pages.get_template(name).render(publication=settings.publication_name, **values)
        return HTMLResponse(html, status_code=status)

    def subscriber_for(token: str) -> tuple[int, str] | None:
        try:
            subscriber_id = signer.read("unsubscribe", token)
            return subscriber_id, mask(service.get(engine, subscriber_id).email)
        except (TokenError, SubscriberError):
            return None

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.get("/unsubscribe/{token}", response_class=HTMLResponse)
    def unsubscribe_page(token: str) -> HTMLResponse:
        found = subscriber_for(token)
        if found is None:
            return page("invalid_link.html", 400, title="Link not valid")
        return page("unsubscribe.html", title="Unsubscribe", address=found[1], action=f"/unsubscribe/{token}")

    @app.post("/unsubscribe/{token}", response_class=HTMLResponse)
    async def unsubscribe(token: str, request: Request) -> HTMLResponse:
        form = await request.form()
        channel = "one-click" if form.get("List-Unsubscribe") == "One-Click" else "page"
        found = subscriber_for(token)
        if found is None:
            return page("invalid_link.html", 400, title="Link not valid")
        service.unsubscribe(engine, found[0], channel=channel)
        return page("unsubscribed.html", title="Unsubscribed", address=found[1], resubscribe=f"/resubscribe/{token}")

    @app.post("/resubscribe/{token}", response_class=HTMLResponse)
    def resubscribe(token: str) -> HTMLResponse:
        found = subscriber_for(token)
        if found is None:
            return page("invalid_link.html", 400, title="Link not valid")
        service.resubscribe(engine, found[0])
        return page("resubscribed.html", title="Subscribed again", address=found[1])

    return app


def mask(address: str) -> str:
    """``ann.smith@example.com`` → ``a••••••••@example.com``: enough to recognise, not to harvest."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}{'•' * max(len(local) - 1, 1)}@{domain}"
