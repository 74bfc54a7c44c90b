"""deliveries: the status ``dropped`` is called ``withdrawn``

A queued delivery that will not be sent (the reader left, or the issue was cancelled) was stored as
``dropped``, a word the glossary never defined and that also named a comparison an editor removed. This
rewrites the stored rows; the downgrade writes the old word back.

Revision ID: 0009_withdrawn
Revises: 0008_doctor_heartbeat
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009_withdrawn'
down_revision = '0008_doctor_heartbeat'
branch_labels = None
depends_on = None


def _rename(old: str, new: str) -> None:
    op.get_bind().execute(sa.text("UPDATE delivery SET status = :new WHERE status = :old"), {"old": old, "new": new})


def upgrade() -> None:
    _rename("dropped", "withdrawn")


def downgrade() -> None:
    _rename("withdrawn", "dropped")
