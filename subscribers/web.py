"""The subscriber-facing web app (FastAPI): sign-up, confirmation, preferences, unsubscribe, webhooks.

``GET /unsubscribe/{token}`` shows a page with a button and never changes anything: link scanners and
prefetchers fire GETs. ``POST /unsubscribe/{token}`` unsubscribes at once and answers 200 with no redirect,
whether the body is ``List-Unsubscribe=One-Click`` (form-encoded or multipart, from a mail client) or the
page's button; for a reader who already left or was erased it answers the same page without the address and
changes nothing (only a tampered token gets 400). The token in the URL is the only credential, signed for
unsubscribing only, so that endpoint needs no cookie and no CSRF check (RFC 8058 forbids both); every other form
is CSRF-protected.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from newsletter import logs, migrate
from newsletter.config import Settings
from newsletter.db import make_engine
from newsletter.errors import SubscriberError
from newsletter.providers.base import Provider
from newsletter.web import health
from subscribers import archive, error_pages, forms, limits, service, webhooks
from subscribers.desk import routes as desk_routes
from subscribers.desk.auth import Gate
from subscribers.models import Subscriber
from subscribers.site import Site
from subscribers.tokens import TokenError

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
HSTS = {"Strict-Transport-Security": "max-age=31536000; includeSubDomains"}


def security_headers_for(settings: Settings) -> dict[str, str]:
    """The headers of every answer; HSTS only when the app is served over https (never for http://localhost)."""
    https = str(settings.public_url).startswith("https://")
    return SECURITY_HEADERS | HSTS if https else dict(SECURITY_HEADERS)


def create_app(settings: Settings, *, provider: Provider | None = None,
               gate: Callable[[Site], Gate] | None = None) -> FastAPI:
    """The app for ``settings``; confirmation emails go through ``provider`` (default: the configured one).

    ``gate`` builds the desk's sign-in gate from the site (tests: a clock, a lower scrypt cost).
    """
    if provider is None:
        from newsletter.wiring import provider_for  # the composition root; imported late to avoid a cycle

        provider = provider_for(settings)
    engine = make_engine(settings.database_url)
    migrate.require_current(engine)  # refuse to start on an out-of-date schema
    site = Site(settings, engine, provider)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()

    app = FastAPI(title=settings.publication_name, lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.add_middleware(limits.BodyLimit)  # inside the security headers, so a 413 carries them too
    app.state.engine, app.state.settings = engine, settings  # for the module-level routes (newsletter.web)
    app.include_router(health.router)
    app.include_router(forms.router(site))
    app.include_router(archive.router(site))
    app.include_router(desk_routes.router(site, gate=gate(site) if gate else None))
    headers = security_headers_for(settings)
    error_pages.install(app, site, headers)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        error_pages.secure(response.headers, headers)
        return response

    def reader_for(token: str) -> Subscriber | None:
        """The reader an unsubscribe token names, or None when they are gone (erased); TokenError if tampered."""
        subscriber_id = site.signer.read("unsubscribe", token)
        try:
            return service.get(engine, subscriber_id)
        except SubscriberError:
            return None

    def gone() -> HTMLResponse:
        # A reader who already left (or was erased) is unsubscribed: say so, with nothing about the address, so an
        # old email's link neither fails nor tells whoever holds it what became of the reader.
        return site.page("unsubscribed.html", title="Unsubscribed")

    @app.get("/unsubscribe/{token}", response_class=HTMLResponse)
    def unsubscribe_page(token: str) -> HTMLResponse:
        try:
            row = reader_for(token)
        except TokenError:
            return site.page("invalid_link.html", 400, title="Link not valid")
        if row is None:
            return gone()
        return site.page("unsubscribe.html", title="Unsubscribe", address=mask(row.email),
                         action=f"/unsubscribe/{token}")

    @app.post("/unsubscribe/{token}", response_class=HTMLResponse)
    async def unsubscribe(token: str, request: Request) -> HTMLResponse:
        form = await request.form()
        channel = "one-click" if form.get("List-Unsubscribe") == "One-Click" else "page"
        try:
            row = reader_for(token)
        except TokenError:
            return site.page("invalid_link.html", 400, title="Link not valid")
        if row is None or row.id is None or row.status not in ("active", "pending"):
            return gone()  # nothing to change: their record keeps when and how they left
        service.unsubscribe(engine, row.id, channel=channel)
        return site.page("unsubscribed.html", title="Unsubscribed", address=mask(row.email),
                         resubscribe=f"/resubscribe/{token}")

    @app.post("/webhooks/{provider_name}")
    async def webhook(provider_name: str, request: Request) -> JSONResponse:
        gate = verifier(settings, provider_name)
        if gate is None:
            return JSONResponse({"error": f"no {provider_name} webhook is configured"}, status_code=404)
        headers = {k.lower(): v for k, v in request.headers.items()}
        code, answer = await webhooks.handle(provider_name, gate, headers, request.body, engine,
                                             soft_limit=settings.soft_bounce_limit)
        return JSONResponse(answer, status_code=code)

    return app


def app_from_environment() -> FastAPI:
    """The app with settings from the environment: the factory each uvicorn worker process calls."""
    from newsletter.config import load_settings

    settings = load_settings()
    logs.configure(settings)
    return create_app(settings)


def verifier(settings: Settings, provider: str) -> webhooks.Gate | None:
    """The checks for ``provider``'s webhooks with the configured secret, or None when none is configured."""
    if provider == "postmark" and settings.postmark_webhook_username and settings.postmark_webhook_password:
        user, password = settings.postmark_webhook_username, settings.postmark_webhook_password.get_secret_value()
        return webhooks.Gate(  # Basic auth is all in the headers: check it before reading any body
            lambda h, now: webhooks.verify_postmark(h, b"", username=user, password=password, now=now),
            lambda h, b, now: None)
    if provider == "sendgrid" and settings.sendgrid_webhook_public_key:
        key = settings.sendgrid_webhook_public_key
        return webhooks.Gate(webhooks.sendgrid_headers,
                             lambda h, b, now: webhooks.verify_sendgrid(h, b, public_key=key, now=now))
    if provider == "mailgun" and settings.mailgun_webhook_signing_key:
        signing = settings.mailgun_webhook_signing_key.get_secret_value()
        return webhooks.Gate(lambda h, now: None,  # Mailgun signs inside the body: only the size cap applies
                             lambda h, b, now: webhooks.verify_mailgun(h, b, signing_key=signing, now=now))
    if provider == "resend" and settings.resend_webhook_secret:
        secret = settings.resend_webhook_secret.get_secret_value()
        return webhooks.Gate(webhooks.resend_headers,
                             lambda h, b, now: webhooks.verify_resend(h, b, secret=secret, now=now))
    return None


def mask(address: str) -> str:
    """``ann.smith@example.com`` → ``a••••••••@example.com``: enough to recognise, not to harvest."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}{'•' * max(len(local) - 1, 1)}@{domain}"
