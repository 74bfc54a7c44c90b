"""Editors of the desk: salted scrypt password hashes and the editor table.

A hash reads ``scrypt$n$r$p$salt$key`` (salt and key in URL-safe base64), so its cost can rise later while
old hashes keep verifying. ``NEWSLETTER_EDITOR_PASSWORD_HASH`` holds one such hash for the editor named
``editor``; ``newsletter editor add`` stores named editors, with an address for review emails.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import UTC, datetime

from email_validator import EmailNotValidError, validate_email
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from newsletter.db import session_scope
from newsletter.errors import ConfigError
from newsletter.models import EditorRow

SETTINGS_EDITOR = "editor"
MIN_PASSWORD = 12
_N, _R, _P = 2**14, 8, 1


def hash_password(password: str) -> str:
    """A salted scrypt hash of ``password``; ConfigError when it is too short to be worth hashing."""
    if len(password) < MIN_PASSWORD:
        raise ConfigError(f"the password has {len(password)} characters; use at least {MIN_PASSWORD}")
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (constant time); a malformed hash matches nothing."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.urlsafe_b64decode(key + "==")
        found = hashlib.scrypt(password.encode(), salt=base64.urlsafe_b64decode(salt + "=="), n=int(n), r=int(r),
                               p=int(p), dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(found, expected)


def check_hash(stored: str) -> str:
    """``stored`` if it has the shape of a hash from :func:`hash_password`; ConfigError otherwise."""
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != "scrypt" or not all(part.isdigit() for part in parts[1:4]):
        raise ConfigError("NEWSLETTER_EDITOR_PASSWORD_HASH is not a hash from `newsletter editor hash`")
    return stored


def add_editor(engine: Engine, name: str, password: str, *, email: str | None = None) -> bool:
    """Create the editor ``name``, or set a new password (and address) for it; True when it was created."""
    name = name.strip()
    if not name or len(name) > 100 or name == SETTINGS_EDITOR:
        raise ConfigError(f"choose a name of 1-100 characters other than {SETTINGS_EDITOR!r} (that one is "
                          "NEWSLETTER_EDITOR_PASSWORD_HASH's)")
    address = _address(email) if email else None
    hashed = hash_password(password)
    with session_scope(engine) as session:
        row = session.exec(select(EditorRow).where(EditorRow.name == name)).first()
        if row is None:
            session.add(EditorRow(name=name, email=address, password_hash=hashed, created_at=datetime.now(UTC)))
            return True
        row.password_hash, row.email = hashed, address or row.email
        return False


def password_hash_of(session: Session, name: str, settings_hash: str | None) -> str | None:
    """The stored hash for ``name``: the settings' editor, or one from the table; None for nobody."""
    if name == SETTINGS_EDITOR:
        return settings_hash
    return session.exec(select(EditorRow.password_hash).where(EditorRow.name == name)).first()


def editor_addresses(session: Session) -> list[str]:
    """Addresses of editors added with one, for review emails."""
    return [a for a in session.exec(select(EditorRow.email).order_by(col(EditorRow.name))) if a]


def list_editors(session: Session) -> list[tuple[str, str | None]]:
    """Every named editor with their address."""
    return [(r.name, r.email) for r in session.exec(select(EditorRow).order_by(col(EditorRow.name)))]


def _address(email: str) -> str:
    try:
        return validate_email(email, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise ConfigError(f"{email!r} is not a valid address: {exc}") from None


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
