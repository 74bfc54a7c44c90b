"""A cheap HTTP/1.1 client for ``bench/web.py``: one kept-alive connection per simulated client, raw asyncio streams.

httpx's async client spends about four times the server's own CPU per request (measured on /healthz: 266 requests/s
through 50 httpx clients, 1,032–1,178/s from the same server through raw streams), and the load generator shares
the machine's two cores with the server, so with httpx the benchmark measured its own client. This client does
only what the cases need: GET, HEAD and POST (a form or raw bytes), Content-Length or chunked answers, and one
cookie jar shared by every connection (the forms' CSRF cookie), as one browser profile would.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit


class ClientError(Exception):
    """The connection failed or closed before a whole answer came (what httpx reports as a transport error)."""


@dataclass
class Response:
    """An answer: status, headers (names lower-cased, the last of each name), body."""

    status_code: int
    headers: dict[str, str]
    content: bytes

    @property
    def text(self) -> str:
        """The body as UTF-8 text."""
        return self.content.decode("utf-8", "replace")


@dataclass
class Jar:
    """Cookies the server set, sent back on every connection that shares the jar."""

    cookies: dict[str, str] = field(default_factory=dict)

    def header(self) -> str:
        """The ``Cookie`` header value, or ''."""
        return "; ".join(f"{name}={value}" for name, value in self.cookies.items())

    def take(self, set_cookie: list[str]) -> None:
        """Remember each ``Set-Cookie``'s name and value (attributes are not needed here)."""
        for line in set_cookie:
            name, _, rest = line.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0].strip()


class Client:
    """One connection to ``base`` (opened on first use, reopened after the server closes it), with extra headers."""

    def __init__(self, base: str, *, jar: Jar, headers: dict[str, str], timeout: float = 60.0) -> None:
        parts = urlsplit(base)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._jar, self._timeout = jar, timeout
        self._fixed = f"Host: {self._host}:{self._port}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def get(self, path: str) -> Response:
        """GET ``path``."""
        return await self.request("GET", path)

    async def head(self, path: str) -> Response:
        """HEAD ``path``."""
        return await self.request("HEAD", path)

    async def post(self, path: str, *, data: dict[str, Any] | None = None, content: bytes | None = None,
                   headers: dict[str, str] | None = None) -> Response:
        """POST a form (``data``) or raw bytes (``content``, with its own ``headers``)."""
        extra = dict(headers or {})
        if data is not None:
            content = urlencode(data).encode()
            extra["Content-Type"] = "application/x-www-form-urlencoded"
        return await self.request("POST", path, content or b"", extra)

    async def request(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
                      ) -> Response:
        """Send one request on the connection and read its whole answer; ClientError if the connection fails."""
        try:
            return await asyncio.wait_for(self._exchange(method, path, body, headers or {}), self._timeout)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError) as exc:
            await self.close()
            raise ClientError(f"{type(exc).__name__}: {exc}") from exc

    async def _exchange(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> Response:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self._host, self._port)
        reader, writer = self._streams
        cookie = self._jar.header()
        head = (f"{method} {path} HTTP/1.1\r\n{self._fixed}" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
                + (f"Cookie: {cookie}\r\n" if cookie else "")
                + (f"Content-Length: {len(body)}\r\n" if body or method == "POST" else "") + "\r\n")
        writer.write(head.encode("latin-1") + body)
        await writer.drain()
        status, answer, cookies = _head(await reader.readuntil(b"\r\n\r\n"))
        self._jar.take(cookies)
        content = b"" if method == "HEAD" or status in (204, 304) else await _body(reader, answer)
        if answer.get("connection", "").lower() == "close":
            await self.close()
        return Response(status, answer, content)

    async def close(self) -> None:
        """Close the connection, if open; the next request opens a new one."""
        if self._streams is not None:
            writer = self._streams[1]
            self._streams = None
            writer.close()


def _head(raw: bytes) -> tuple[int, dict[str, str], list[str]]:
    """The status, the headers and every ``Set-Cookie`` of an answer's head."""
    lines = raw.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
            if name.strip().lower() == "set-cookie":
                cookies.append(value.strip())
    return status, headers, cookies


async def _body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    """The body as the head says: Content-Length bytes, or chunks until the empty one."""
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"]))
    if headers.get("transfer-encoding", "").lower() != "chunked":
        return await reader.read()  # until the server closes: the length is the connection's
    chunks = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return b"".join(chunks)
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)
