"""Schema migrations (Alembic): apply them, and tell whether a database is up to date.

Every command that reads the database sets up a brand-new, empty one itself (:func:`prepare`), and refuses to
start on a schema older than the code, or on tables of ours without a revision; ``newsletter db upgrade`` brings
an old schema to the current revision. The migrations ship inside the package.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

from newsletter.errors import ConfigError

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic is imported where it is used: loading it costs a process ~10 MB, and a process that never checks or
# migrates a schema (a sender started on a database already checked, as the benchmark's) should not carry it.

MIGRATIONS = Path(__file__).parent / "migrations"
State = Literal["current", "empty", "partial", "behind"]
# APScheduler creates and owns its job table in the same database; migrations leave it alone.
SCHEDULER_TABLES = frozenset({"apscheduler_jobs"})
# Any constant will do: every process that creates a schema on PostgreSQL takes this lock first, so two first
# starts at once (web and scheduler) migrate once, and the second finds the schema made.
CREATE_LOCK = 7_302_017_112
PARTIAL_ADVICE = ("`newsletter db upgrade` did not make them: point NEWSLETTER_DATABASE_URL at an empty database, "
                  "or at this app's own")


def _upgrade(config: Config) -> None:
    from alembic import command

    command.upgrade(config, "head")


def include_name(name: str | None, type_: str, _parents: object) -> bool:
    """Only the app's own tables are migrated or compared with the models."""
    return not (type_ == "table" and name in SCHEDULER_TABLES)


def _config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head() -> str:
    """The newest revision the code knows."""
    from alembic.script import ScriptDirectory

    revision = ScriptDirectory.from_config(_config()).get_current_head()
    assert revision is not None
    return revision


def current(engine: Engine) -> str | None:
    """The revision the database is at; None when it was never migrated."""
    with engine.connect() as connection:  # Alembic reads its version table through a Core connection
        return _revision(connection)


def state(engine: Engine) -> State:
    """``current``; ``empty`` (no table of ours at all); ``partial`` (tables of ours, no revision); ``behind``."""
    with engine.connect() as connection:
        return _state(connection)


def _state(connection: Connection) -> State:
    revision = _revision(connection)
    if revision is not None:
        return "current" if revision == head() else "behind"
    ours = set(inspect(connection).get_table_names()) - SCHEDULER_TABLES
    return "partial" if ours else "empty"


def _revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Apply every pending migration; returns (revision before, revision after). Tables not made by migrations
    (a ``partial`` database) are refused with a ConfigError, untouched."""
    if state(engine) == "partial":
        raise ConfigError(_refusal("partial", engine))
    before = current(engine)
    config = _config()
    with engine.begin() as connection:  # Alembic runs the migrations on one Core connection, in one transaction
        config.attributes["connection"] = connection
        _upgrade(config)
    return before, head()


def require_current(engine: Engine) -> None:
    """ConfigError telling the operator to run ``newsletter db upgrade`` unless the schema is current."""
    found = state(engine)
    if found != "current":
        raise ConfigError(_refusal(found, engine))


def prepare(engine: Engine) -> str | None:
    """Create the schema of a brand-new, empty database and say so in one line; None when it was there already.

    Only a database with no table of ours is set up here. One that is behind, or holds tables of ours without a
    revision (someone else's, or a half-made one), gets the ConfigError of :func:`require_current`: upgrading an
    existing schema is the operator's decision (`newsletter db upgrade`, after a backup), never a side effect.
    """
    with engine.begin() as connection:  # one transaction: the lock, the check and the migrations
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CREATE_LOCK})
        found = _state(connection)
        if found == "current":
            return None
        if found != "empty":
            raise ConfigError(_refusal(found, engine))
        config = _config()
        config.attributes["connection"] = connection
        _upgrade(config)
    return f"created the database schema at revision {head()}"


def _refusal(found: State, engine: Engine) -> str:
    if found == "partial":  # migrating over tables we did not make would fail half-way, or mix two apps' data
        return f"the database has tables but no schema revision, so {PARTIAL_ADVICE}"
    what = "has no schema yet" if found == "empty" else f"is at revision {current(engine)}, not {head()}"
    return f"the database {what}: run `newsletter db upgrade` first"
