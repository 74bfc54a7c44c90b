"""Migrations: the migrated schema is exactly the models', on both databases; stale schemas are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel
from typer.testing import CliRunner

from newsletter import migrate
from newsletter.cli import app
from newsletter.db import make_engine
from newsletter.errors import ConfigError

runner = CliRunner()


def test_migrated_schema_matches_the_models(engine: Engine) -> None:
    """``engine`` was built by running the migrations; autogenerate must find nothing left to do."""
    assert migrate.state(engine) == "current"
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}),
                                       SQLModel.metadata)
    assert differences == []


def test_commands_refuse_an_unmigrated_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", f"sqlite:///{tmp_path / 'fresh.db'}")
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", "migration-test-secret-0123")
    for command in (["issue", "list"], ["subscribers", "list"], ["serve"], ["scheduler"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 1, (command, result.output)
        assert "run `newsletter db upgrade` first" in " ".join(result.output.split())
    status = runner.invoke(app, ["db", "status"])
    assert status.exit_code == 0 and "Schema: empty" in status.output
    upgraded = runner.invoke(app, ["db", "upgrade"])
    assert upgraded.exit_code == 0 and f"Schema at revision {migrate.head()} (was empty)" in upgraded.output
    assert "(up to date)" in runner.invoke(app, ["db", "upgrade"]).output
    assert runner.invoke(app, ["issue", "list"]).exit_code == 0


def test_a_schema_behind_the_code_is_refused(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    migrate.upgrade(engine)
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = '0000'")
    assert migrate.state(engine) == "behind"
    with pytest.raises(ConfigError, match=r"at revision 0000, not 0001: run `newsletter db upgrade` first"):
        migrate.require_current(engine)
    engine.dispose()
