"""editor sessions kept server-side, failed sign-ins per name

Revision ID: 0004_editors
Revises: 0003_sends
Create Date: 2026-11-24 02:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0004_editors'
down_revision = '0003_sends'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('editor_session',
    sa.Column('id_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('editor', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('fingerprint', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id_hash')
    )
    with op.batch_alter_table('editor_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_editor_session_editor'), ['editor'], unique=False)
        batch_op.create_index(batch_op.f('ix_editor_session_expires_at'), ['expires_at'], unique=False)

    op.create_table('editor_login_failure',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('last_failure_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('locked_until', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('name')
    )


def downgrade() -> None:
    op.drop_table('editor_login_failure')
    with op.batch_alter_table('editor_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_editor_session_expires_at'))
        batch_op.drop_index(batch_op.f('ix_editor_session_editor'))
    op.drop_table('editor_session')
