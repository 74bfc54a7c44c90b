"""clicks: each issue's link table and the clicks counted through the redirect

An issue's links to the site go through ``/r/{issue}/{link}``; the target of each is kept per issue
(``issue_link``), so the redirect never reads a destination from the URL. ``click`` holds the counted clicks, with
the reader only when readers are tracked. Deliveries gain an (issue, submitted_at) index: the click writer asks
for an issue's submissions just before a click, to leave out scanners that fetch links on arrival.

Revision ID: 0013_clicks
Revises: 0012_votes
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0013_clicks'
down_revision = '0012_votes'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'issue_link',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('issue_id', sa.Integer(), nullable=False),
        sa.Column('link', sa.Integer(), nullable=False),
        sa.Column('target', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column('comparison', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
        sa.Column('label', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=False),
        sa.Column('tracked', sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(['issue_id'], ['issue.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('issue_id', 'link'),
        sa.UniqueConstraint('issue_id', 'target'),
    )
    op.create_index(op.f('ix_issue_link_issue_id'), 'issue_link', ['issue_id'], unique=False)
    op.create_table(
        'click',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('issue_id', sa.Integer(), nullable=False),
        sa.Column('link_id', sa.Integer(), nullable=False),
        sa.Column('subscriber_id', sa.Integer(), nullable=True),
        sa.Column('clicked_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('first_on_link', sa.Boolean(), nullable=False),
        sa.Column('first_in_issue', sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(['issue_id'], ['issue.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['link_id'], ['issue_link.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_click_issue_link', 'click', ['issue_id', 'link_id'], unique=False)
    op.create_index(op.f('ix_click_subscriber_id'), 'click', ['subscriber_id'], unique=False)
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.create_index('ix_delivery_submitted', ['issue_id', 'submitted_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_index('ix_delivery_submitted')
    op.drop_index(op.f('ix_click_subscriber_id'), table_name='click')
    op.drop_index('ix_click_issue_link', table_name='click')
    op.drop_table('click')
    op.drop_index(op.f('ix_issue_link_issue_id'), table_name='issue_link')
    op.drop_table('issue_link')
