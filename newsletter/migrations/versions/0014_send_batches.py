"""deliveries: claimed in batches fixed before the send, the lease on the batch row

A claim used to write every delivery of its batch (the lease) and the result wrote each again. Batches now
have their own table: a claim writes the batch row, and each delivery row is written once, with its result.
The lease columns move from the delivery to the batch (``lease_until``, ``lease_key``, the batch ``key``).

A send under way is carried over: queued deliveries that were claimed before keep their batch, under its key
(so an idempotent provider sees the same request again), with its lease as it was, honoured until it runs out;
queued deliveries that have a due time but were never claimed are put in fresh batches of 100 of one due time.
Queued deliveries without a due time (issues not started) get their batch when sending starts. Downgrading
copies each open batch's key and lease back to its queued deliveries.

Revision ID: 0014_send_batches
Revises: 0013_clicks
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from itertools import groupby

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0014_send_batches'
down_revision = '0013_clicks'
branch_labels = None
depends_on = None

SIZE = 100
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)  # claimed before due times existed: due long since
TIME = sqlmodel.sql.sqltypes.UTCDateTime
BATCHES = sa.table("delivery_batch", sa.column("id", sa.Integer), sa.column("issue_id", sa.Integer),
                   sa.column("due_at", TIME()), sa.column("key", sa.String), sa.column("fresh", sa.Boolean),
                   sa.column("claims", sa.Integer), sa.column("lease_until", TIME()),
                   sa.column("lease_key", sa.String), sa.column("done", sa.Boolean))
DELIVERIES = sa.table("delivery", sa.column("id", sa.Integer), sa.column("issue_id", sa.Integer),
                      sa.column("status", sa.String), sa.column("batch_key", sa.String),
                      sa.column("lease_key", sa.String), sa.column("lease_until", TIME()),
                      sa.column("due_at", TIME()), sa.column("attempts", sa.Integer),
                      sa.column("batch_id", sa.Integer))


def upgrade() -> None:
    op.create_table(
        "delivery_batch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issue_id", sa.Integer(), nullable=False),
        sa.Column("due_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("fresh", sa.Boolean(), nullable=False),
        sa.Column("claims", sa.Integer(), nullable=False),
        sa.Column("lease_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("lease_key", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["issue_id"], ["issue.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_delivery_batch_claim", "delivery_batch", ["issue_id", "done", "due_at", "id"], unique=False)
    with op.batch_alter_table("delivery") as batch:
        batch.add_column(sa.Column("batch_id", sa.Integer(), nullable=True))
        batch.create_index("ix_delivery_batch_id", ["batch_id"], unique=False)
    _carry_over(op.get_bind())
    with op.batch_alter_table("delivery") as batch:
        batch.drop_index("ix_delivery_batch_key")
        batch.drop_column("batch_key")
        batch.drop_column("lease_key")
        batch.drop_column("lease_until")


def _carry_over(connection: sa.Connection) -> None:
    """Give the queued deliveries that have a due time their batch: claimed ones by their batch key, as they were
    leased; the others in fresh batches of ``SIZE`` of one due time, in id order."""
    d = DELIVERIES.c
    queued = d.status == "queued"
    claimed = connection.execute(sa.select(d.issue_id, d.batch_key, sa.func.min(d.due_at), sa.func.max(d.lease_until),
                                           sa.func.max(d.lease_key))
                                 .where(queued, d.batch_key.is_not(None)).group_by(d.issue_id, d.batch_key)).all()
    for issue_id, key, due, until, lease_key in claimed:
        # No claims counted: the deliveries' attempts already hold the claims made before this revision.
        batch = _insert(connection, issue_id=issue_id, due_at=due or LONG_AGO, key=key, fresh=False, claims=0,
                        lease_until=until, lease_key=lease_key)
        connection.execute(sa.update(DELIVERIES).where(queued, d.issue_id == issue_id, d.batch_key == key)
                           .values(batch_id=batch))
    fresh = connection.execute(sa.select(d.id, d.issue_id, d.due_at).where(
        queued, d.batch_key.is_(None), d.due_at.is_not(None)).order_by(d.issue_id, d.due_at, d.id)).all()
    for (issue_id, due), group in groupby(fresh, key=lambda row: (row[1], row[2])):
        ids = [row[0] for row in group]
        for start in range(0, len(ids), SIZE):
            batch = _insert(connection, issue_id=issue_id, due_at=due, key=uuid.uuid4().hex, fresh=True, claims=0,
                            lease_until=None, lease_key=None)
            connection.execute(sa.update(DELIVERIES).where(d.id == sa.bindparam("d")).values(batch_id=batch),
                               [{"d": delivery} for delivery in ids[start:start + SIZE]])


def _insert(connection: sa.Connection, **values: object) -> int:
    return int(connection.execute(sa.insert(BATCHES).values(done=False, **values).returning(BATCHES.c.id))
               .scalar_one())


def downgrade() -> None:
    with op.batch_alter_table("delivery") as batch:
        batch.add_column(sa.Column("lease_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("lease_key", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
        batch.add_column(sa.Column("batch_key", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))
        batch.create_index("ix_delivery_batch_key", ["batch_key"], unique=False)
    op.get_bind().execute(sa.text(
        "UPDATE delivery SET batch_key = (SELECT b.key FROM delivery_batch b WHERE b.id = delivery.batch_id "
        "AND NOT b.fresh), lease_key = (SELECT b.lease_key FROM delivery_batch b WHERE b.id = delivery.batch_id), "
        "lease_until = (SELECT b.lease_until FROM delivery_batch b WHERE b.id = delivery.batch_id) "
        "WHERE status = 'queued' AND batch_id IS NOT NULL"))
    with op.batch_alter_table("delivery") as batch:
        batch.drop_index("ix_delivery_batch_id")
        batch.drop_column("batch_id")
    op.drop_index("ix_delivery_batch_claim", table_name="delivery_batch")
    op.drop_table("delivery_batch")
