"""local delivery: a due time on every delivery, part of the claim index, and a time zone per subscriber

Claims take only deliveries that are due, earliest first, so the claim index becomes (issue, status, due time,
id) and claiming stays one indexed statement. Deliveries already queued for an issue being sent (or paused)
are due at once, as they were before; those of issues not started get their due time when sending starts.

Revision ID: 0010_waves_local_delivery
Revises: 0009_withdrawn
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0010_waves_local_delivery'
down_revision = '0009_withdrawn'
branch_labels = None
depends_on = None

# Long past: these deliveries were claimable before this migration, and stay so.
DUE_ALREADY = datetime(2000, 1, 1)


def upgrade() -> None:
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.add_column(sa.Column('due_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.drop_index('ix_delivery_claim')
        batch_op.create_index('ix_delivery_claim', ['issue_id', 'status', 'due_at', 'id'], unique=False)
    op.get_bind().execute(sa.text(
        "UPDATE delivery SET due_at = :due WHERE status = 'queued' AND issue_id IN "
        "(SELECT id FROM issue WHERE status IN ('sending', 'paused'))"), {"due": DUE_ALREADY})
    with op.batch_alter_table('subscriber', schema=None) as batch_op:
        batch_op.add_column(sa.Column('time_zone', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('subscriber', schema=None) as batch_op:
        batch_op.drop_column('time_zone')
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_index('ix_delivery_claim')
        batch_op.create_index('ix_delivery_claim', ['issue_id', 'status', 'id'], unique=False)
        batch_op.drop_column('due_at')
