"""Editors of the desk: salted scrypt password hashes and the editor table.

A hash reads ``scrypt$n$r$p$salt$key`` (salt and key in URL-safe base64), so its cost can rise later while
old hashes keep verifying; a sign-in with a hash below :data:`COST` stores a new one (:func:`needs_rehash`).
``NEWSLETTER_EDITOR_PASSWORD_HASH`` holds one such hash for the editor named ``editor``; ``newsletter editor
add`` stores named editors, with an address for review emails.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, delete, select

from newsletter import addresses
from newsletter.db import session_scope
from newsletter.errors import AddressError, ConfigError
from newsletter.models import EditorRow, EditorSessionRow

SETTINGS_EDITOR = "editor"
MIN_PASSWORD = 12


@dataclass(frozen=True)
class Cost:
    """scrypt's work factors: CPU and memory cost ``n`` (a power of two), block size ``r``, parallelism ``p``."""

    n: int
    r: int
    p: int

    @property
    def maxmem(self) -> int:
        """Bytes scrypt may use: its ~128·r·n working set and a margin (hashlib's default cap is 32 MiB)."""
        return 128 * self.r * (self.n + self.p + 2) + 2**20

    def below(self, other: Cost) -> bool:
        """Whether any factor is lower than ``other``'s: a hash made with this cost should be made again."""
        return self.n < other.n or self.r < other.r or self.p < other.p


COST = Cost(2**17, 8, 1)  # OWASP Password Storage Cheat Sheet's minimum for scrypt (about 128 MiB per hash)
_MOST_MEMORY = 2**30  # a stored hash asking for more is a typo or an attack, not a hash made here


def hash_password(password: str, *, cost: Cost = COST) -> str:
    """A salted scrypt hash of ``password`` at ``cost``; ConfigError when it is too short to be worth hashing."""
    if len(password) < MIN_PASSWORD:
        raise ConfigError(f"the password has {len(password)} characters; use at least {MIN_PASSWORD}")
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=cost.n, r=cost.r, p=cost.p, maxmem=cost.maxmem)
    return f"scrypt${cost.n}${cost.r}${cost.p}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (constant time); a malformed hash matches nothing."""
    cost = cost_of(stored)
    if cost is None or cost.maxmem > _MOST_MEMORY:
        return False
    try:
        _, _, _, _, salt, key = stored.split("$")
        expected = base64.urlsafe_b64decode(key + "==")
        found = hashlib.scrypt(password.encode(), salt=base64.urlsafe_b64decode(salt + "=="), n=cost.n, r=cost.r,
                               p=cost.p, maxmem=cost.maxmem, dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(found, expected)


def cost_of(stored: str) -> Cost | None:
    """The work factors written in ``stored``, or None when it is not a hash from :func:`hash_password`."""
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != "scrypt" or not all(part.isdigit() for part in parts[1:4]):
        return None
    return Cost(int(parts[1]), int(parts[2]), int(parts[3]))


def needs_rehash(stored: str, *, cost: Cost = COST) -> bool:
    """Whether ``stored`` was made with less work than ``cost``, so a sign-in should store a new hash."""
    found = cost_of(stored)
    return found is not None and found.below(cost)


def fingerprint(stored: str) -> str:
    """A short digest of a stored hash: sessions remember it, so a new password ends them."""
    return hashlib.sha256(stored.encode()).hexdigest()[:32]


def check_hash(stored: str) -> str:
    """``stored`` if it has the shape of a hash from :func:`hash_password`; ConfigError otherwise."""
    if cost_of(stored) is None:
        raise ConfigError("NEWSLETTER_EDITOR_PASSWORD_HASH is not a hash from `newsletter editor hash`")
    return stored


def add_editor(engine: Engine, name: str, password: str, *, email: str | None = None, cost: Cost = COST) -> bool:
    """Create the editor ``name``, or set a new password (and address) for it and end its sessions; True when new."""
    name = name.strip()
    if not name or len(name) > 100 or name == SETTINGS_EDITOR:
        raise ConfigError(f"choose a name of 1-100 characters other than {SETTINGS_EDITOR!r} (that one is "
                          "NEWSLETTER_EDITOR_PASSWORD_HASH's)")
    address = _address(email) if email else None
    hashed = hash_password(password, cost=cost)
    with session_scope(engine) as session:
        row = session.exec(select(EditorRow).where(EditorRow.name == name)).first()
        if row is None:
            session.add(EditorRow(name=name, email=address, password_hash=hashed, created_at=datetime.now(UTC)))
            return True
        row.password_hash, row.email = hashed, address or row.email
        session.exec(delete(EditorSessionRow).where(col(EditorSessionRow.editor) == name))
        return False


def upgrade_hash(engine: Engine, name: str, password: str, *, cost: Cost = COST) -> None:
    """Store a new hash of the (just verified) ``password`` of ``name`` at ``cost``; its sessions stay open."""
    hashed = hash_password(password, cost=cost)
    with session_scope(engine) as session:
        row = session.exec(select(EditorRow).where(EditorRow.name == name)).first()
        if row is None:
            return
        old, row.password_hash = row.password_hash, hashed
        for open_session in session.exec(select(EditorSessionRow).where(
                EditorSessionRow.editor == name, EditorSessionRow.fingerprint == fingerprint(old))):
            open_session.fingerprint = fingerprint(hashed)  # same password, so no session should end


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
        return addresses.check(email).normalized.lower()
    except AddressError as exc:
        raise ConfigError(f"{email!r} is not a valid address: {exc}") from None


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
