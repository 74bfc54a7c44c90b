"""Migration 0012_votes on both databases: up from 0011, the one-vote-per-reader key, down and up again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from newsletter import migrate
from tests.newsletter.test_migrate import _migrated_to

INSERT = text("INSERT INTO vote (subscriber_id, comparison, tool, issue_number, choice, created_at, updated_at) "
              "VALUES (:who, 'a-vs-b', 'a', 1, 'ship', '2026-11-24 07:00:00', '2026-11-24 07:00:00')")


@pytest.fixture(params=["sqlite", "postgresql"])
def at_0011(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A fresh database migrated only to 0011, on SQLite or on a PostgreSQL schema of its own."""
    yield from _migrated_to("0011_reconcile_failed_at", request, tmp_path)


def test_votes_table_comes_and_goes_with_its_revision(at_0011: Engine) -> None:
    assert "vote" not in inspect(at_0011).get_table_names()
    migrate.upgrade(at_0011)
    assert migrate.state(at_0011) == "current"
    with at_0011.begin() as connection:
        connection.execute(INSERT, [{"who": 1}, {"who": None}, {"who": None}])  # erased readers' votes: many
    with pytest.raises(IntegrityError), at_0011.begin() as connection:
        connection.execute(INSERT, {"who": 1})  # one vote per reader per tool per comparison
    with at_0011.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM vote")).scalar() == 3
    config = migrate._config()
    with at_0011.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0011_reconcile_failed_at")
    assert "vote" not in inspect(at_0011).get_table_names()
    migrate.upgrade(at_0011)
    assert "vote" in inspect(at_0011).get_table_names()
