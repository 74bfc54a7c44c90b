"""subscriber addresses: internationalised domains in their ASCII (IDNA) form

Addresses are now stored as ``user@xn--bcher-kva.example`` rather than ``user@bücher.example``, so that a
reader typing either form is the same row. This rewrites the rows stored before. A row whose ASCII form is
taken already keeps its Unicode form (it still goes out in ASCII: providers convert at send time).

Revision ID: 0007_smtp
Revises: 0006_webhooks
"""

from __future__ import annotations

import idna
import sqlalchemy as sa
from alembic import op

revision = '0007_smtp'
down_revision = '0006_webhooks'
branch_labels = None
depends_on = None


def _ascii(address: str | None) -> str | None:
    """``address`` with an ASCII domain, or None when it is ASCII already or IDNA cannot encode it."""
    if address is None or address.isascii():
        return None
    local, at, domain = address.rpartition("@")
    if not at or domain.isascii():
        return None
    try:
        return f"{local}@{idna.encode(domain, uts46=True).decode('ascii')}".lower()
    except idna.IDNAError:
        return None


def upgrade() -> None:
    connection = op.get_bind()
    # Only rows with a non-ASCII character (more bytes than characters) need a look; the rest stay untouched.
    octets = "octet_length({})" if connection.dialect.name == "postgresql" else "length(CAST({} AS BLOB))"
    wide = " OR ".join(f"{octets.format(c)} != length({c})" for c in ("email", "pending_email"))
    rows = connection.execute(sa.text(f"SELECT id, email, pending_email FROM subscriber WHERE {wide}")).all()
    for row_id, email, pending in rows:
        new_email, new_pending = _ascii(email), _ascii(pending)
        taken = new_email is not None and connection.execute(
            sa.text("SELECT 1 FROM subscriber WHERE email = :email"), {"email": new_email}).first() is not None
        if new_email is not None and not taken:
            connection.execute(sa.text("UPDATE subscriber SET email = :email WHERE id = :id"),
                               {"email": new_email, "id": row_id})
        if new_pending is not None:
            connection.execute(sa.text("UPDATE subscriber SET pending_email = :email WHERE id = :id"),
                               {"email": new_pending, "id": row_id})


def downgrade() -> None:
    # Nothing to undo: the ASCII form names the same mailbox, and the Unicode one is not kept.
    pass
