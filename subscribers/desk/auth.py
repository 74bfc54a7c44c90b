"""Editors' sign-in: password check, a signed session cookie, a login rate limit.

The session cookie holds the editor's name and a fingerprint of their password hash, signed and dated: it
expires after ``NEWSLETTER_EDITOR_SESSION_HOURS``, and changing a password ends every session made with the old
one. It is ``HttpOnly``, ``SameSite=Strict`` and scoped to ``/editor``; forms carry the app's CSRF token too.
"""

from __future__ import annotations

import hashlib

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlmodel import Session

from newsletter import editors
from subscribers.site import RateLimit, Site

COOKIE = "editor_session"
PATH = "/editor"


class Gate:
    """Who may use the desk: verifies passwords, mints and reads session cookies."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self._serializer = URLSafeTimedSerializer(site.secret, salt="editor-session")
        self._max_age = site.settings.editor_session_hours * 3600
        self.attempts = RateLimit(10)
        configured = site.settings.editor_password_hash
        self._settings_hash = editors.check_hash(configured.get_secret_value()) if configured else None

    def _hash_of(self, name: str) -> str | None:
        with Session(self.site.engine) as session:
            return editors.password_hash_of(session, name, self._settings_hash)

    def login(self, name: str, password: str) -> bool:
        """Whether ``name`` and ``password`` belong to an editor."""
        # A name with a control character is no editor's (and PostgreSQL refuses NUL in a query).
        stored = self._hash_of(name.strip()) if name.isprintable() else None
        if stored is None:
            editors.verify_password(password, _DUMMY)  # same work for unknown names: no user enumeration by timing
            return False
        return editors.verify_password(password, stored)

    def open_session(self, response: Response, name: str) -> None:
        """Set the session cookie for ``name`` on ``response``."""
        stored = self._hash_of(name) or ""
        token = self._serializer.dumps([name, _fingerprint(stored)])
        response.set_cookie(COOKIE, token, max_age=self._max_age, path=PATH, httponly=True, samesite="strict",
                            secure=self.site.base.startswith("https://"))

    def editor(self, request: Request) -> str | None:
        """The signed-in editor's name, or None (no cookie, expired, tampered, or the password changed)."""
        token = request.cookies.get(COOKIE)
        if not token:
            return None
        try:
            name, fingerprint = self._serializer.loads(token, max_age=self._max_age)
        except (BadSignature, ValueError, TypeError):
            return None
        stored = self._hash_of(str(name))
        return str(name) if stored is not None and _fingerprint(stored) == fingerprint else None

    @staticmethod
    def close_session(response: Response) -> None:
        """Clear the session cookie."""
        response.delete_cookie(COOKIE, path=PATH)


def _fingerprint(stored: str) -> str:
    return hashlib.sha256(stored.encode()).hexdigest()[:16]


_DUMMY = "scrypt$16384$8$1$c2FsdHNhbHRzYWx0c2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
