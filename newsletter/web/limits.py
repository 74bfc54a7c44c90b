"""A cap on request bodies, enforced before and while they are read: 413 beyond it.

A declared ``Content-Length`` over the cap is answered at once, without reading a byte of the body. A chunked
body (no length) is counted as it arrives and refused as soon as it passes the cap, so no request makes the
server hold more than the cap in memory. Routes that check credentials in headers first never read a
stranger's body at all.
"""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY = 1024 * 1024  # 1 MiB: webhooks carry a few events, forms a few fields


class BodyTooLarge(HTTPException):
    """The request body passed the cap; FastAPI answers it as a 413 wherever a route was reading."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


class BodyLimit:
    """ASGI middleware: refuse HTTP request bodies larger than ``max_bytes`` with 413."""

    def __init__(self, app: ASGIApp, *, max_bytes: int = MAX_BODY) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on with a counting ``receive``, or answer 413 for a declared length over the cap."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await too_large(send, self.max_bytes)
            return
        started, seen = False, 0

        async def counting_receive() -> Message:
            """The next request message, counted; BodyTooLarge once the body passes the cap."""
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def watching_send(message: Message) -> None:
            """Send ``message``, noting whether the answer has started."""
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except BodyTooLarge:  # read outside a route (no exception handler on the way): answer it here
            if started:
                raise
            await too_large(send, self.max_bytes)


async def too_large(send: Send, limit: int) -> None:
    """Send a complete 413 JSON answer."""
    body = json.dumps({"error": f"the request body is larger than {limit} bytes"}).encode()
    await send({"type": "http.response.start", "status": 413, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
