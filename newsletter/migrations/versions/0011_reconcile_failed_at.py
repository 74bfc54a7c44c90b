"""deliveries: when a failure was written

A failure whose outcome is unknown is reconciled from the provider's own record for
``NEWSLETTER_RECONCILE_HOURS`` after it was written; the time is kept with the delivery. Rows failed before this
revision have none and are left to the operator, as before.

Revision ID: 0011_reconcile_failed_at
Revises: 0010_waves_local_delivery
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0011_reconcile_failed_at'
down_revision = '0010_waves_local_delivery'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("delivery") as batch:
        batch.add_column(sa.Column("failed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("delivery") as batch:
        batch.drop_column("failed_at")
