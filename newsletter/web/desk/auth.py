"""Editors' sign-in: password check, a server-side session per device, login limits per address and per name.

The session cookie holds a random id whose row (``newsletter.editor_sessions``) says who is signed in: it
expires after ``NEWSLETTER_EDITOR_SESSION_HOURS``, signing out deletes it, and changing a password ends every
session made with the old one. It is ``HttpOnly``, ``SameSite=Strict`` and scoped to ``/editor``; forms carry
the app's CSRF token too. Failed sign-ins pause sign-in under that name for a while
(``newsletter.editor_lockout``), wherever they come from; a sign-in with a hash made at a lower scrypt cost
stores a new hash at the current one. Pauses, session ages and the limit per address read the gate's clock.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import Request, Response

from newsletter import editor_lockout as lockout
from newsletter import editors
from newsletter.clock import Clock
from newsletter.db import session_scope
from newsletter.editor_sessions import close_session, find_session, open_session
from newsletter.web.site import RateLimit, Site

COOKIE = "editor_session"
PATH = "/editor"


@dataclass(frozen=True)
class Attempt:
    """The outcome of one sign-in: whether it worked, and until when sign-ins under that name are paused."""

    signed_in: bool
    paused_until: datetime | None = None


class Gate:
    """Who may use the desk: verifies passwords, limits attempts, opens, reads and closes sessions."""

    def __init__(self, site: Site, *, clock: Clock | None = None, cost: editors.Cost = editors.COST,
                 policy: lockout.Policy | None = None) -> None:
        self.site, self.clock, self.cost = site, clock or site.clock, cost
        self.policy = policy or lockout.Policy()
        self._lifetime = timedelta(hours=site.settings.editor_session_hours)
        self.attempts = RateLimit(10, clock=self.clock)
        configured = site.settings.editor_password_hash
        self._settings_hash = editors.check_hash(configured.get_secret_value()) if configured else None
        # Never matches (the key is not a real hash) but costs what a real check costs: no enumeration by timing.
        self._dummy = f"scrypt${cost.n}${cost.r}${cost.p}${secrets.token_urlsafe(16)}${'A' * 43}"

    def _hash_of(self, name: str) -> str | None:
        with session_scope(self.site.engine) as session:
            return editors.password_hash_of(session, name, self._settings_hash)

    def login(self, name: str, password: str) -> Attempt:
        """Check ``name`` and ``password``, counting a failure against ``name`` whether or not it is an editor's."""
        name, now, engine = name.strip(), self.clock.now(), self.site.engine
        if not name.isprintable():  # no editor's name holds a control character (and PostgreSQL refuses NUL)
            editors.verify_password(password, self._dummy)  # the same work as for any other unknown name
            return Attempt(False)
        paused = lockout.paused_until(engine, name, now=now)
        if paused is not None:  # refused unchecked, even with the right password, and not counted
            return Attempt(False, paused)
        stored = self._hash_of(name)
        if not editors.verify_password(password, stored or self._dummy) or stored is None:
            return Attempt(False, lockout.record_failure(engine, name, now=now, policy=self.policy))
        lockout.forget_failures(engine, name)
        if name != editors.SETTINGS_EDITOR and editors.needs_rehash(stored, cost=self.cost):
            editors.upgrade_hash(engine, name, password, cost=self.cost)  # the settings' hash is the operator's
        return Attempt(True)

    def open_session(self, response: Response, name: str) -> None:
        """Start a session for ``name`` and set its cookie on ``response``."""
        stored = self._hash_of(name) or ""
        token = open_session(self.site.engine, name, editors.fingerprint(stored), now=self.clock.now(),
                             lifetime=self._lifetime)
        response.set_cookie(COOKIE, token, max_age=int(self._lifetime.total_seconds()), path=PATH, httponly=True,
                            samesite="strict", secure=self.site.base.startswith("https://"))

    def editor(self, request: Request) -> str | None:
        """The signed-in editor's name, or None (no cookie, signed out, expired, or the password changed)."""
        token = request.cookies.get(COOKIE)
        found = find_session(self.site.engine, token, now=self.clock.now()) if token else None
        if found is None:
            return None
        name, fingerprint = found
        stored = self._hash_of(name)
        return name if stored is not None and editors.fingerprint(stored) == fingerprint else None

    def close_session(self, request: Request, response: Response) -> None:
        """End the request's session on the server and clear its cookie."""
        token = request.cookies.get(COOKIE)
        if token:
            close_session(self.site.engine, token)
        response.delete_cookie(COOKIE, path=PATH)
