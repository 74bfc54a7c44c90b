"""initial schema: catalog, issues, deliveries, subscribers, webhook events

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-23 10:32:50.559147
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('comparison',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=False),
    sa.Column('published', sa.Date(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('comparison', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_comparison_published'), ['published'], unique=False)
        batch_op.create_index(batch_op.f('ix_comparison_slug'), ['slug'], unique=True)

    op.create_table('issue',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('week', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('comparison_count', sa.Integer(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('sent_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('week')
    )
    with op.batch_alter_table('issue', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_issue_number'), ['number'], unique=True)
        batch_op.create_index(batch_op.f('ix_issue_status'), ['status'], unique=False)

    op.create_table('subscriber',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('categories', sa.Text(), nullable=False),
    sa.Column('free_only', sa.Boolean(), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('confirmed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('unsubscribed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('unsubscribe_channel', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('consent_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('consent_ip', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('consent_user_agent', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=True),
    sa.Column('consent_text', sa.Text(), nullable=True),
    sa.Column('confirmation_sent_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('confirmed_ip', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('confirmed_user_agent', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=True),
    sa.Column('pending_email', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
    sa.Column('pause_remaining', sa.Integer(), nullable=False),
    sa.Column('soft_bounces', sa.Integer(), nullable=False),
    sa.Column('erased', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('subscriber', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subscriber_email'), ['email'], unique=True)
        batch_op.create_index('ix_subscriber_status_prefs', ['status', 'categories', 'free_only', 'id'], unique=False)

    op.create_table('tool',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('tagline', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('category', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('pricing_tier', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('pricing_note', sa.Text(), nullable=True),
    sa.Column('published', sa.Date(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('tool', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tool_category'), ['category'], unique=False)
        batch_op.create_index(batch_op.f('ix_tool_published'), ['published'], unique=False)
        batch_op.create_index(batch_op.f('ix_tool_slug'), ['slug'], unique=True)

    op.create_table('webhook_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('provider', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('event_id', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('received_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('event_id')
    )
    op.create_table('comparison_side',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('comparison_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('tool_id', sa.Integer(), nullable=False),
    sa.Column('panel_percent', sa.Integer(), nullable=True),
    sa.Column('panel_ship', sa.Integer(), nullable=True),
    sa.Column('panel_size', sa.Integer(), nullable=True),
    sa.Column('panel_label', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True),
    sa.Column('community_votes', sa.Integer(), nullable=True),
    sa.Column('community_ship_percent', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['comparison_id'], ['comparison.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tool_id'], ['tool.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('comparison_id', 'position')
    )
    with op.batch_alter_table('comparison_side', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_comparison_side_comparison_id'), ['comparison_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_comparison_side_tool_id'), ['tool_id'], unique=False)

    op.create_table('delivery',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('issue_id', sa.Integer(), nullable=False),
    sa.Column('subscriber_id', sa.Integer(), nullable=False),
    sa.Column('cohort_key', sqlmodel.sql.sqltypes.AutoString(length=600), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('lease_until', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('batch_key', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('provider_id', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('submitted_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['issue_id'], ['issue.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('issue_id', 'subscriber_id')
    )
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_delivery_batch_key'), ['batch_key'], unique=False)
        batch_op.create_index('ix_delivery_claim', ['issue_id', 'status', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_delivery_issue_id'), ['issue_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_delivery_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_delivery_subscriber_id'), ['subscriber_id'], unique=False)

    op.create_table('issue_cohort',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('issue_id', sa.Integer(), nullable=False),
    sa.Column('cohort_key', sqlmodel.sql.sqltypes.AutoString(length=600), nullable=False),
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('preheader', sa.Text(), nullable=False),
    sa.Column('html', sa.Text(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('comparison_count', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['issue_id'], ['issue.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('issue_id', 'cohort_key')
    )
    with op.batch_alter_table('issue_cohort', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_issue_cohort_issue_id'), ['issue_id'], unique=False)

    op.create_table('review',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('side_id', sa.Integer(), nullable=False),
    sa.Column('persona', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('score', sa.Integer(), nullable=True),
    sa.Column('ship', sa.Boolean(), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['side_id'], ['comparison_side.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('side_id', 'persona')
    )
    with op.batch_alter_table('review', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_review_side_id'), ['side_id'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('review', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_review_side_id'))

    op.drop_table('review')
    with op.batch_alter_table('issue_cohort', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_issue_cohort_issue_id'))

    op.drop_table('issue_cohort')
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_delivery_subscriber_id'))
        batch_op.drop_index(batch_op.f('ix_delivery_status'))
        batch_op.drop_index(batch_op.f('ix_delivery_issue_id'))
        batch_op.drop_index('ix_delivery_claim')
        batch_op.drop_index(batch_op.f('ix_delivery_batch_key'))

    op.drop_table('delivery')
    with op.batch_alter_table('comparison_side', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_comparison_side_tool_id'))
        batch_op.drop_index(batch_op.f('ix_comparison_side_comparison_id'))

    op.drop_table('comparison_side')
    op.drop_table('webhook_event')
    with op.batch_alter_table('tool', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tool_slug'))
        batch_op.drop_index(batch_op.f('ix_tool_published'))
        batch_op.drop_index(batch_op.f('ix_tool_category'))

    op.drop_table('tool')
    with op.batch_alter_table('subscriber', schema=None) as batch_op:
        batch_op.drop_index('ix_subscriber_status_prefs')
        batch_op.drop_index(batch_op.f('ix_subscriber_email'))

    op.drop_table('subscriber')
    with op.batch_alter_table('issue', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_issue_status'))
        batch_op.drop_index(batch_op.f('ix_issue_number'))

    op.drop_table('issue')
    with op.batch_alter_table('comparison', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_comparison_slug'))
        batch_op.drop_index(batch_op.f('ix_comparison_published'))

    op.drop_table('comparison')

