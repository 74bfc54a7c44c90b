"""What every page of the web app shares: page rendering, CSRF, client address, rate limit, transactional mail.

The client address (for the sign-up and login limits and the consent record) is the direct peer's, unless
that peer is one of ``NEWSLETTER_TRUSTED_PROXIES``: only then is ``X-Forwarded-For`` read, right to left,
skipping the trusted hops, because anyone can send the header and only our own proxies' entries are true.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import threading
from collections import deque
from collections.abc import Callable, Sequence
from datetime import timedelta
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from pathlib import Path
from typing import Annotated, Any, TypeVar

import anyio
import jinja2
from fastapi import Path as PathParam
from fastapi import Request
from fastapi.responses import HTMLResponse
from sqlalchemy.engine import Engine

from newsletter.clock import SYSTEM, Clock
from newsletter.config import Settings
from newsletter.providers.base import Provider
from newsletter.render import compile_mjml, make_environment
from newsletter.values import Message
from newsletter.wiring import Wiring
from subscribers.tokens import Signer

T = TypeVar("T")
PAGES = Path(__file__).parent / "pages"
CSRF_COOKIE = "csrf"
# An issue number in a path: past PostgreSQL's integer (SQLite holds more) no issue can exist, so the path names
# no page (a 404) instead of overflowing the database driver.
IssueNumber = Annotated[int, PathParam(ge=1, le=2**31 - 1)]


class RateLimit:
    """At most ``limit`` hits per key in a sliding hour (per process: behind several workers, per worker)."""

    def __init__(self, limit: int, window: float = 3600.0, *, clock: Clock = SYSTEM) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        """Count a hit for ``key``; False when it is over the limit."""
        now = self.clock.monotonic()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] < now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return False
            hits.append(now)
            return True


class Site:
    """What the pages share, built once per app: settings, engine, provider, signer, templates, clock, the limit."""

    def __init__(self, settings: Settings, engine: Engine, provider: Provider, *, signer: Signer | None = None,
                 emails: jinja2.Environment | None = None, clock: Clock = SYSTEM) -> None:
        self.settings, self.engine, self.provider, self.clock = settings, engine, provider, clock
        self.secret = settings.require_secret()
        self.signer = signer or Signer(self.secret)
        # auto_reload off: the pages ship with the package, and checking each file's mtime cost a stat per render.
        self.pages = jinja2.Environment(loader=jinja2.FileSystemLoader(PAGES), autoescape=True, auto_reload=False)
        self.emails = emails or make_environment()
        self.limit = RateLimit(settings.signup_rate_limit, clock=clock)
        self.base = str(settings.public_url).rstrip("/")
        self.trusted = settings.trusted_networks
        self._send_lock = threading.Lock()
        self.lane = write_lane(engine)

    async def in_lane(self, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a route's database writes off the event loop, in the app's write lane (see :func:`write_lane`)."""
        return await in_lane(self.lane, work, *args, **kwargs)

    @classmethod
    def of(cls, wiring: Wiring) -> Site:
        """The site from the process's composition object: its engine (schema checked), provider, signer, clock."""
        provider = wiring.provider()  # first, as before: a provider missing its key is the first thing said
        return cls(wiring.settings, wiring.engine, provider, signer=wiring.signer, emails=wiring.emails,
                   clock=wiring.clock)

    def client_ip(self, request: Request) -> str:
        """The visitor's address: the peer's, or behind trusted proxies the nearest untrusted X-Forwarded-For hop."""
        peer = request.client.host if request.client else None
        return client_address(peer, request.headers.getlist("x-forwarded-for"), self.trusted)

    def page(self, name: str, status: int = 200, *, request: Request | None = None, **values: Any) -> HTMLResponse:
        """Render a page; with ``request``, forms on it get a CSRF token bound to the visitor's cookie."""
        cookie = request.cookies.get(CSRF_COOKIE) if request else None
        fresh = request is not None and not cookie
        cookie = cookie or secrets.token_urlsafe(24)
        html = self.pages.get_template(name).render(publication=self.settings.publication_name,
                                                    csrf=self._csrf(cookie), **values)
        response = HTMLResponse(html, status_code=status)
        if fresh:
            response.set_cookie(CSRF_COOKIE, cookie, httponly=True, samesite="strict",
                                secure=self.base.startswith("https://"))
        return response

    def csrf_ok(self, request: Request, submitted: str | None) -> bool:
        """Whether a form's CSRF token matches the visitor's cookie (double submit, signed)."""
        cookie = request.cookies.get(CSRF_COOKIE)
        # compare_digest refuses non-ASCII str; a token we minted is hex, so anything else simply does not match.
        return bool(cookie and submitted and submitted.isascii()
                    and hmac.compare_digest(self._csrf(cookie), submitted))

    def resend_after(self) -> timedelta:
        """How long a reader waits before another confirmation email goes to the same address."""
        return timedelta(minutes=self.settings.confirm_resend_minutes)

    def _csrf(self, cookie: str) -> str:
        return hmac.new(self.secret.encode(), b"csrf:" + cookie.encode(), hashlib.sha256).hexdigest()

    def send_confirmation(self, subscriber_id: int, address: str, *, change: bool = False) -> None:
        """Email ``address`` a link that confirms it (a sign-up, or an address change)."""
        link = f"{self.base}/confirm/{self.signer.mint_confirm(subscriber_id, address)}"
        subject = f"Confirm your {self.settings.publication_name} subscription"
        values = {"subject": subject, "address": address, "link": link, "change": change,
                  "days": self.settings.confirm_max_age_days, "publication": self.settings.publication_name,
                  "postal_address": self.settings.postal_address}
        html = compile_mjml(self.emails.get_template("confirmation.mjml.j2").render(values))
        text = self.emails.get_template("confirmation.txt.j2").render(values)
        self.send(Message(0, self.settings.from_address, address, subject, html, text))

    def send(self, message: Message) -> None:
        """Hand one transactional email to the provider (one at a time: the provider is shared).

        The provider stays open between emails until :meth:`close`: an HTTP provider's client is made once, since
        making one (its TLS context) held the GIL for ~16 ms, a stall every route felt at each confirmation.
        """
        with self._send_lock:
            self.provider.send_messages([message])

    def close(self) -> None:
        """Release the provider's connections (the app is shutting down)."""
        with self._send_lock:
            self.provider.close()


def write_lane(engine: Engine) -> anyio.CapacityLimiter | None:
    """The threads the write routes (one-click unsubscribes, sign-ups, votes, webhooks) run their database work on.

    On SQLite, one: SQLite writes one transaction at a time, and with several threads a writer that let go of the
    GIL for SQLite's I/O waited to get it back from threads that could only queue behind it. Measured with
    ``bench/web.py`` (SQLite, 1 worker): 1,137 one-click unsubscribes/s on one thread, 882 on two, 854 on eight.
    On PostgreSQL, None: the routes' shared threads, since the server takes writers side by side.
    """
    return anyio.CapacityLimiter(1) if engine.dialect.name == "sqlite" else None


async def in_lane(lane: anyio.CapacityLimiter | None, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``work(*args, **kwargs)`` on a thread of ``lane`` (None: the routes' shared threads)."""
    return await anyio.to_thread.run_sync(functools.partial(work, *args, **kwargs), limiter=lane)


Networks = Sequence[IPv4Network | IPv6Network]


def client_address(peer: str | None, forwarded: Sequence[str], trusted: Networks) -> str:
    """Who sent a request that ``peer`` delivered with these X-Forwarded-For lines, believing ``trusted`` only."""
    address = _parse_ip(peer or "")
    if address is None:
        return peer or "unknown"
    hops = [hop for line in forwarded for hop in line.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted(address, trusted):
            break
        entry = _parse_ip(hop)
        if entry is None:  # garbage is no address: the trusted hop that passed it on is the best we know
            break
        address = entry
    return str(address)


def _is_trusted(address: IPv4Address | IPv6Address, trusted: Networks) -> bool:
    return any(address.version == network.version and address in network for network in trusted)


def _parse_ip(text: str) -> IPv4Address | IPv6Address | None:
    text = text.strip()
    if text.startswith("["):  # [v6]:port
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # v4:port, as some proxies write it
        text = text.partition(":")[0]
    try:
        address = ip_address(text)
    except ValueError:
        return None
    return (address.ipv4_mapped or address) if isinstance(address, IPv6Address) else address  # ::ffff:a.b.c.d


def mask(address: str) -> str:
    """``ann.smith@example.com`` → ``a••••••••@example.com``: enough to recognise, not to harvest."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}{'•' * max(len(local) - 1, 1)}@{domain}"
