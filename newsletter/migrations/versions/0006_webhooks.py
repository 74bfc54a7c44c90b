"""webhook tokens: Mailgun signature tokens remembered for the replay window

Revision ID: 0006_webhooks
Revises: 0005_readers
Create Date: 2026-12-04 02:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0006_webhooks'
down_revision = '0005_readers'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('webhook_token',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('digest', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('body_digest', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('signed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('digest')
    )
    with op.batch_alter_table('webhook_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_token_signed_at'), ['signed_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('webhook_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_token_signed_at'))
    op.drop_table('webhook_token')
