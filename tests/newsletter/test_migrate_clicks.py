"""Migration 0013: the link and click tables come and go with their index, and an issue sent before them keeps its
deliveries (both databases)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from newsletter import migrate
from tests.newsletter.test_migrate import _migrated_to


@pytest.fixture(params=["sqlite", "postgresql"])
def at_0012(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A fresh database migrated only to 0012, on SQLite or on a PostgreSQL schema of its own."""
    yield from _migrated_to("0012_votes", request, tmp_path)


def test_clicks_tables_come_with_0013_and_go_on_downgrade(at_0012: Engine) -> None:
    from alembic import command

    with at_0012.begin() as connection:
        connection.execute(text("INSERT INTO issue (number, week, subject, status, comparison_count, created_at, "
                                "note, arrangement) VALUES (1, '2026-W47', 'Old', 'sent', 2, "
                                "'2026-11-16 07:00:00', '', '')"))
        connection.execute(text("INSERT INTO delivery (issue_id, subscriber_id, cohort_key, status, attempts, "
                                "submitted_at) VALUES (1, 1, 'all', 'submitted', 1, '2026-11-17 07:00:00')"))
    migrate.upgrade(at_0012)
    with at_0012.begin() as connection:
        connection.execute(text("INSERT INTO issue_link (issue_id, link, target, comparison, label, tracked) "
                                "VALUES (1, 1, 'https://site.example.com/compare/a-vs-b', 'a-vs-b', 'A vs B', false)"))
        connection.execute(text("INSERT INTO click (issue_id, link_id, subscriber_id, clicked_at, first_on_link, "
                                "first_in_issue) VALUES (1, 1, NULL, '2026-11-17 08:00:00', false, false)"))
    found = inspect(at_0012)
    assert {"issue_link", "click"} <= set(found.get_table_names())
    assert "ix_delivery_submitted" in {index["name"] for index in found.get_indexes("delivery")}
    config = migrate._config()
    with at_0012.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0012_votes")
    found = inspect(at_0012)
    assert not {"issue_link", "click"} & set(found.get_table_names())
    assert "ix_delivery_submitted" not in {index["name"] for index in found.get_indexes("delivery")}
    with at_0012.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM delivery")).scalar_one() == 1
    migrate.upgrade(at_0012)  # and up again
    assert "click" in inspect(at_0012).get_table_names()
