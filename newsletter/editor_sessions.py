"""Editors' sessions, one row per signed-in device: signing out deletes the row, so its cookie stops working.

The cookie holds a random id; the table keeps only its SHA-256, so a copy of the database opens no session.
Each row remembers a fingerprint of the password hash it was opened with (``editors.fingerprint``): the desk
checks it on every request, so a new password ends sessions even for the editor from settings.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import col, delete, select

from newsletter.db import session_scope
from newsletter.models import EditorSessionRow


def open_session(engine: Engine, editor: str, fingerprint: str, *, now: datetime, lifetime: timedelta) -> str:
    """Store a new session for ``editor`` and return the id its cookie carries."""
    token = secrets.token_urlsafe(32)
    with session_scope(engine) as session:
        session.exec(delete(EditorSessionRow).where(col(EditorSessionRow.expires_at) <= now))  # tidy as we go
        session.add(EditorSessionRow(id_hash=_digest(token), editor=editor, fingerprint=fingerprint,
                                     created_at=now, expires_at=now + lifetime))
    return token


def find_session(engine: Engine, token: str, *, now: datetime) -> tuple[str, str] | None:
    """The editor and password fingerprint of the open session ``token``; None when closed, expired or unknown."""
    with session_scope(engine) as session:
        row = session.get(EditorSessionRow, _digest(token))
        return (row.editor, row.fingerprint) if row is not None and row.expires_at > now else None


def close_session(engine: Engine, token: str) -> None:
    """End the session ``token`` (nothing happens when there is none)."""
    with session_scope(engine) as session:
        session.exec(delete(EditorSessionRow).where(col(EditorSessionRow.id_hash) == _digest(token)))


def open_sessions(engine: Engine, editor: str, *, now: datetime) -> int:
    """How many unexpired sessions ``editor`` has, on any device."""
    with session_scope(engine) as session:
        query = select(EditorSessionRow).where(EditorSessionRow.editor == editor,
                                               col(EditorSessionRow.expires_at) > now)
        return len(session.exec(query).all())


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
