"""Migrations: the migrated schema is exactly the models', on both databases; stale schemas are refused."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel
from typer.testing import CliRunner

from newsletter import migrate
from newsletter.cli import app
from newsletter.db import make_engine
from newsletter.errors import ConfigError
from tests.conftest import TEST_SECRET_KEY

runner = CliRunner()


def test_migrated_schema_matches_the_models(engine: Engine) -> None:
    """``engine`` was built by running the migrations; autogenerate must find nothing left to do."""
    assert migrate.state(engine) == "current"
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True,
                                                                                "include_name": migrate.include_name}),
                                       SQLModel.metadata)
    assert differences == []


@pytest.fixture(params=["sqlite", "postgresql"])
def blank_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a brand-new database with no table at all: a SQLite file, or a PostgreSQL schema of its own."""
    from tests.conftest import PG_URL

    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    if not PG_URL:
        pytest.skip("PostgreSQL tests need NEWSLETTER_TEST_DATABASE_URL")
    schema = f"b_{uuid.uuid4().hex[:12]}"
    admin = make_engine(PG_URL)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    yield f"{PG_URL}{'&' if '?' in PG_URL else '?'}options=-csearch_path%3D{schema}"
    with admin.begin() as connection:
        connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture
def configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Point the CLI at a database URL, with the settings every command needs."""
    def use(url: str) -> None:
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("NEWSLETTER_DATABASE_URL", url)
        monkeypatch.setenv("NEWSLETTER_SECRET_KEY", TEST_SECRET_KEY)
        monkeypatch.setenv("NEWSLETTER_POSTAL_ADDRESS", "1 Test Street")
    return use


def test_the_first_command_sets_up_a_brand_new_database_once(blank_url: str,
                                                              configured: Callable[[str], None]) -> None:
    configured(blank_url)
    status = runner.invoke(app, ["db", "status"])
    assert status.exit_code == 1 and "Schema: empty" in status.output and "newsletter db upgrade" in status.output
    first = runner.invoke(app, ["issue", "list"])
    assert first.exit_code == 0, first.output
    assert first.output.count(f"created the database schema at revision {migrate.head()}") == 1
    assert "No issues yet" in first.output
    again = runner.invoke(app, ["subscribers", "list"])
    assert again.exit_code == 0 and "created the database schema" not in again.output, again.output
    assert runner.invoke(app, ["db", "status"]).exit_code == 0
    assert "(up to date)" in runner.invoke(app, ["db", "upgrade"]).output


def test_db_upgrade_still_sets_up_an_empty_database_itself(blank_url: str,
                                                          configured: Callable[[str], None]) -> None:
    configured(blank_url)
    upgraded = runner.invoke(app, ["db", "upgrade"])
    assert upgraded.exit_code == 0 and f"Schema at revision {migrate.head()} (was empty)" in upgraded.output


def test_the_schedulers_own_table_does_not_make_a_database_ours(blank_url: str) -> None:
    engine = make_engine(blank_url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE apscheduler_jobs (id VARCHAR(191) PRIMARY KEY)"))
    assert migrate.state(engine) == "empty"
    assert migrate.prepare(engine) == f"created the database schema at revision {migrate.head()}"
    assert migrate.state(engine) == "current" and migrate.prepare(engine) is None
    engine.dispose()


def test_tables_of_ours_without_a_revision_are_refused_untouched(blank_url: str,
                                                                configured: Callable[[str], None]) -> None:
    engine = make_engine(blank_url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE subscriber (id INTEGER PRIMARY KEY)"))
    configured(blank_url)
    for command in (["issue", "list"], ["serve"], ["scheduler"], ["db", "status"], ["db", "upgrade"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 1, (command, result.output)
    refused = " ".join(runner.invoke(app, ["issue", "list"]).output.split())
    assert "has tables but no schema revision" in refused and "created" not in refused
    assert "point NEWSLETTER_DATABASE_URL at an empty database" in refused
    assert migrate.state(engine) == "partial" and migrate.current(engine) is None
    engine.dispose()


def test_a_schema_behind_the_code_is_refused_by_every_command(tmp_path: Path,
                                                              configured: Callable[[str], None]) -> None:
    from alembic import command

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    config = migrate._config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
    engine.dispose()
    configured(url)
    for args in (["issue", "list"], ["subscribers", "list"], ["serve"], ["scheduler"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 1, (args, result.output)
        said = " ".join(result.output.split())
        assert f"is at revision 0001, not {migrate.head()}: run `newsletter db upgrade` first" in said, said
    status = runner.invoke(app, ["db", "status"])
    assert status.exit_code == 1 and "Schema: behind (database at 0001" in status.output
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    assert runner.invoke(app, ["db", "status"]).exit_code == 0


def test_a_schema_behind_the_code_is_refused_then_upgraded_with_its_data(tmp_path: Path) -> None:
    from alembic import command

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    config = migrate._config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        connection.exec_driver_sql("INSERT INTO issue (number, week, subject, status, comparison_count, created_at) "
                                   "VALUES (1, '2026-W47', 'Old issue', 'sent', 2, '2026-11-16 07:00:00')")
    assert migrate.state(engine) == "behind"
    with pytest.raises(ConfigError, match=rf"at revision 0001, not {migrate.head()}: run `newsletter db upgrade` first"):
        migrate.require_current(engine)
    assert migrate.upgrade(engine) == ("0001", migrate.head())
    with engine.connect() as connection:
        row = connection.exec_driver_sql("SELECT subject, note, arrangement, send_at FROM issue").one()
    assert tuple(row) == ("Old issue", "", "", None)
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def at_0002(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A fresh database migrated only to 0002, on SQLite or on a PostgreSQL schema of its own."""
    yield from _migrated_to("0002", request, tmp_path)


@pytest.fixture(params=["sqlite", "postgresql"])
def at_0007(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A fresh database migrated only to 0007, on SQLite or on a PostgreSQL schema of its own."""
    yield from _migrated_to("0007_smtp", request, tmp_path)


def _migrated_to(revision: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    from alembic import command

    from tests.conftest import PG_URL

    schema = f"m_{uuid.uuid4().hex[:12]}"
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    elif not PG_URL:
        pytest.skip("PostgreSQL tests need NEWSLETTER_TEST_DATABASE_URL")
    else:
        admin = make_engine(PG_URL)
        with admin.begin() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
        engine = make_engine(f"{PG_URL}{'&' if '?' in PG_URL else '?'}options=-csearch_path%3D{schema}")
    config = migrate._config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    yield engine
    engine.dispose()
    if request.param == "postgresql":
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def test_stored_internationalised_domains_are_rewritten_in_ascii(at_0002: Engine) -> None:
    insert = ("INSERT INTO subscriber (email, pending_email, status, categories, free_only, source, created_at, "
              "pause_remaining, soft_bounces, erased) VALUES (:email, :pending, 'active', '', false, 'signup', "
              "'2026-11-16 07:00:00', 0, 0, false)")
    rows = [("user@bücher.example", None), ("ann@example.com", "ann@bücher.example"), ("bob@bücher.example", None),
            ("bob@xn--bcher-kva.example", None), ("üser@bücher.example", None)]
    with at_0002.begin() as connection:
        connection.execute(text(insert), [{"email": email, "pending": pending} for email, pending in rows])
    migrate.upgrade(at_0002)
    with at_0002.connect() as connection:
        stored = connection.exec_driver_sql("SELECT email, pending_email FROM subscriber ORDER BY id").all()
    assert [tuple(r) for r in stored] == [
        ("user@xn--bcher-kva.example", None), ("ann@example.com", "ann@xn--bcher-kva.example"),
        ("bob@bücher.example", None),  # its ASCII form is another row already: left as it was, sent in ASCII
        ("bob@xn--bcher-kva.example", None), ("üser@xn--bcher-kva.example", None)]


def test_dropped_deliveries_become_withdrawn_and_back_on_downgrade(at_0007: Engine) -> None:
    from alembic import command

    with at_0007.begin() as connection:
        connection.execute(text("INSERT INTO issue (number, week, subject, status, comparison_count, created_at, "
                                "note, arrangement, subject_override, preheader_override) VALUES (1, '2026-W47', "
                                "'Old', 'cancelled', 2, '2026-11-16 07:00:00', '', '', '', '')"))
        connection.execute(text("INSERT INTO delivery (issue_id, subscriber_id, cohort_key, status, attempts) "
                                "VALUES (1, 1, 'all', 'dropped', 0), (1, 2, 'all', 'submitted', 1)"))
    migrate.upgrade(at_0007)

    def stored() -> list[str]:
        with at_0007.connect() as connection:
            return list(connection.execute(text("SELECT status FROM delivery ORDER BY subscriber_id")).scalars())

    assert stored() == ["withdrawn", "submitted"]
    config = migrate._config()
    with at_0007.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0007_smtp")
    assert stored() == ["dropped", "submitted"]


@pytest.fixture(params=["sqlite", "postgresql"])
def at_0009(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A fresh database migrated only to 0009, on SQLite or on a PostgreSQL schema of its own."""
    yield from _migrated_to("0009_withdrawn", request, tmp_path)


def test_a_send_under_way_when_due_times_arrive_stays_claimable(at_0009: Engine) -> None:
    from datetime import timedelta

    from newsletter import deliveries

    with at_0009.begin() as connection:
        connection.execute(text("INSERT INTO issue (number, week, subject, status, comparison_count, created_at, "
                                "note, arrangement) VALUES (1, '2026-W47', 'Sending', 'sending', 2, "
                                "'2026-11-16 07:00:00', '', ''), (2, '2026-W48', 'Draft', 'draft', 2, "
                                "'2026-11-23 07:00:00', '', '')"))
        connection.execute(text("INSERT INTO delivery (issue_id, subscriber_id, cohort_key, status, attempts) "
                                "VALUES (1, 1, 'all', 'queued', 0), (1, 2, 'all', 'submitted', 1), "
                                "(2, 1, 'all', 'queued', 0)"))
    migrate.upgrade(at_0009)
    claim = deliveries.claim(at_0009, 1, 10, timedelta(minutes=1))
    assert claim is not None and [s for _, s, _ in claim.rows] == [1]  # the queued one, due as it was before
    assert deliveries.claim(at_0009, 2, 10, timedelta(minutes=1)) is None  # a draft: due when its send starts


@pytest.fixture(params=["sqlite", "postgresql"])
def at_0011(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A fresh database migrated only to 0011, on SQLite or on a PostgreSQL schema of its own."""
    yield from _migrated_to("0011_reconcile_failed_at", request, tmp_path)


def test_a_send_under_way_moves_to_batches_its_lease_honoured_and_its_key_kept(at_0011: Engine) -> None:
    """Queued deliveries of a sending issue get batches: a batch in flight keeps its key and lease (claimed again,
    whole, only once the lease ran out), the unclaimed rest is claimable at once; a draft's wait for its start."""
    from datetime import UTC, datetime, timedelta

    from newsletter import deliveries
    from newsletter.clock import ManualClock

    now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    with at_0011.begin() as connection:
        connection.execute(text("INSERT INTO issue (number, week, subject, status, comparison_count, created_at, "
                                "note, arrangement) VALUES (1, '2026-W47', 'Sending', 'sending', 2, "
                                "'2026-11-16 07:00:00', '', ''), (2, '2026-W48', 'Draft', 'draft', 2, "
                                "'2026-11-23 07:00:00', '', '')"))
        rows = [(1, 1, "queued", "k-in-flight", "lease-1", now + timedelta(minutes=5), 1),
                (1, 2, "queued", "k-in-flight", "lease-1", now + timedelta(minutes=5), 1),
                (1, 3, "submitted", "k-done", None, None, 1)] + [(1, s, "queued", None, None, None, 0) for s in (4, 5, 6)]
        for issue, subscriber, status, key, lease_key, until, attempts in rows:
            connection.execute(text(
                "INSERT INTO delivery (issue_id, subscriber_id, cohort_key, status, attempts, batch_key, lease_key, "
                "lease_until, due_at) VALUES (:i, :s, 'all', :st, :a, :k, :lk, :u, :due)"),
                {"i": issue, "s": subscriber, "st": status, "a": attempts, "k": key, "lk": lease_key, "u": until,
                 "due": now - timedelta(hours=1)})
        connection.execute(text("INSERT INTO delivery (issue_id, subscriber_id, cohort_key, status, attempts) "
                                "VALUES (2, 1, 'all', 'queued', 0)"))
    migrate.upgrade(at_0011)
    clock, lease = ManualClock(now), timedelta(minutes=10)
    fresh = deliveries.claim(at_0011, 1, 100, lease, clock=clock)
    assert fresh is not None and [s for _, s, _ in fresh.rows] == [4, 5, 6] and not fresh.reclaimed
    assert deliveries.claim(at_0011, 1, 100, lease, clock=clock) is None  # the batch in flight is still leased
    clock.advance(timedelta(minutes=6))
    again = deliveries.claim(at_0011, 1, 1, lease, clock=clock)  # whole, though bigger than this claim's size
    assert again is not None and again.key == "k-in-flight" and again.reclaimed
    assert [s for _, s, _ in again.rows] == [1, 2]
    assert deliveries.claim(at_0011, 2, 100, lease, clock=clock) is None  # a draft: batched when its send starts
    from alembic import command

    config = migrate._config()
    with at_0011.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0011_reconcile_failed_at")
    with at_0011.connect() as connection:
        back = connection.execute(text("SELECT subscriber_id, batch_key FROM delivery WHERE issue_id = 1 AND "
                                       "status = 'queued' ORDER BY subscriber_id")).all()
    assert [(s, k) for s, k in back] == [(1, "k-in-flight"), (2, "k-in-flight")] + [(s, fresh.key) for s in (4, 5, 6)]
