"""How the web app answers what no route answers: errors as pages in the site's look, and HEAD as GET.

Every error is an HTML page with the security headers, whatever raised it: an unknown address (404), a wrong
method (405), a path that does not parse (404), a body that does not parse (400), and an unexpected exception
(500, with no traceback in the body; the server logs it). The 500 page is answered outside the app's middleware,
so it carries the headers itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from newsletter.web.site import Site

MESSAGES = {
    400: "This request could not be read. Go back, reload the page and try again.",
    405: "This address does not take that kind of request.",
    413: "This request is too large.",
    422: "Some of what was sent is not in the expected form. Go back, reload the page and try again.",
    500: "Something on our side failed. Nothing you sent was half-saved; try again in a while.",
}


# Set in the scope of a HEAD request answered as GET: a route that counts what it answers (the click redirect)
# must not count a HEAD.
HEAD_REQUEST = "newsletter.head"


def secure(headers: MutableHeaders, security: Mapping[str, str]) -> None:
    """Add each security header that a route did not set itself (a route may set a stricter or wider policy)."""
    for name, value in security.items():
        headers.setdefault(name, value)


def install(app: FastAPI, security: Mapping[str, str]) -> None:
    """Answer errors on ``app`` with the site's pages carrying ``security``, and HEAD wherever GET answers."""
    app.state.security_headers = dict(security)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(Exception, unexpected)
    app.add_middleware(HeadAsGet)


def error_page(request: Request, status: int, headers: Mapping[str, str] | None = None) -> HTMLResponse:
    """The site's page for an error ``status``, with ``headers`` and the app's security headers."""
    site: Site = request.app.state.site
    if status == 404:
        response = site.page("not_found.html", 404, title="Page not found")
    else:
        heading = "Something went wrong" if status >= 500 else HTTPStatus(status).phrase
        response = site.page("error.html", status, title=heading, heading=heading,
                             message=MESSAGES.get(status, MESSAGES[400 if status < 500 else 500]))
    response.headers.update(headers or {})
    secure(response.headers, request.app.state.security_headers)
    return response


async def http_error(request: Request, exc: Exception) -> Response:
    """An HTTP error a route or the router raised (404, 405, 413, …) as a page."""
    assert isinstance(exc, HTTPException)
    return error_page(request, exc.status_code, exc.headers)


async def invalid(request: Request, exc: Exception) -> Response:
    """A request that does not parse: 404 when it is the path (it names no page), else 422."""
    assert isinstance(exc, RequestValidationError)
    # A path that does not parse (a word, or an id past any stored one) names no page: that is a 404.
    in_path = any(list(error.get("loc") or [""])[:1] == ["path"] for error in exc.errors())
    return error_page(request, 404 if in_path else 422)


async def unexpected(request: Request, _: Exception) -> Response:
    """Any other exception: the 500 page, no traceback (the server logs it)."""
    return error_page(request, 500)


class SecurityHeaders:
    """ASGI middleware: every answer gets each security header its route did not set itself.

    Plain ASGI rather than ``app.middleware("http")``: Starlette's ``BaseHTTPMiddleware`` wraps every answer in a
    streamed response and a task group, which cost more than some whole routes.
    """

    def __init__(self, app: ASGIApp, *, security: Mapping[str, str]) -> None:
        self.app, self.security = app, dict(security)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, adding the headers to the answer's start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                secure(MutableHeaders(scope=message), self.security)
            await send(message)

        await self.app(scope, receive, secured)


class HeadAsGet:
    """ASGI middleware: a HEAD request is answered as the GET would be, headers only.

    FastAPI's GET routes do not answer HEAD; link checkers and mail scanners send it. Every GET here is safe
    (none changes anything), so answering HEAD with it is too.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; for HEAD, as a GET whose body is dropped (Content-Length stays the GET's)."""
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            """Send the GET's answer with its body dropped."""
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET", HEAD_REQUEST: True}, receive, headers_only)
