"""votes: a reader's Ship or Skip on one tool of one comparison, from an issue

One row per reader per tool per comparison (the latest vote counts); the reader's id is set to NULL when they are
erased, and the vote still counts. Comparison and tool are kept by slug.

Revision ID: 0012_votes
Revises: 0011_reconcile_failed_at
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0012_votes'
down_revision = '0011_reconcile_failed_at'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vote",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=True),
        sa.Column("comparison", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("tool", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("issue_number", sa.Integer(), nullable=False),
        sa.Column("choice", sqlmodel.sql.sqltypes.AutoString(length=4), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("subscriber_id", "comparison", "tool"),
    )
    op.create_index("ix_vote_comparison_tool", "vote", ["comparison", "tool"])
    op.create_index(op.f("ix_vote_subscriber_id"), "vote", ["subscriber_id"])
    op.create_index(op.f("ix_vote_issue_number"), "vote", ["issue_number"])
    op.create_index(op.f("ix_vote_updated_at"), "vote", ["updated_at"])


def downgrade() -> None:
    op.drop_table("vote")
