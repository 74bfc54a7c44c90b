"""Alembic environment: the app's metadata, run on the connection ``newsletter.migrate`` hands over."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import newsletter.models  # noqa: F401 - registers the core's tables
import subscribers.models  # noqa: F401 - registers the subscriber tables
from newsletter.migrate import include_name

config = context.config
connection = config.attributes["connection"]
context.configure(connection=connection, target_metadata=SQLModel.metadata, render_as_batch=True,
                  compare_type=True, include_name=include_name)
with context.begin_transaction():
    context.run_migrations()
