"""Schema migrations (Alembic): apply them, and tell whether a database is up to date.

The demo, ``serve``, ``scheduler`` and ``worker`` refuse to start on an out-of-date schema; ``newsletter db
upgrade`` brings it to the current revision. The migrations ship inside the package.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from newsletter.errors import ConfigError

MIGRATIONS = Path(__file__).parent / "migrations"
State = Literal["current", "empty", "behind"]
# APScheduler creates and owns its job table in the same database; migrations leave it alone.
SCHEDULER_TABLES = frozenset({"apscheduler_jobs"})


def include_name(name: str | None, type_: str, _parents: object) -> bool:
    """Only the app's own tables are migrated or compared with the models."""
    return not (type_ == "table" and name in SCHEDULER_TABLES)


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head() -> str:
    """The newest revision the code knows."""
    revision = ScriptDirectory.from_config(_config()).get_current_head()
    assert revision is not None
    return revision


def current(engine: Engine) -> str | None:
    """The revision the database is at; None when it was never migrated."""
    with engine.connect() as connection:  # Alembic reads its version table through a Core connection
        return MigrationContext.configure(connection).get_current_revision()


def state(engine: Engine) -> State:
    """``current``, ``empty`` (never migrated) or ``behind``."""
    revision = current(engine)
    if revision is None:
        return "empty"
    return "current" if revision == head() else "behind"


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Apply every pending migration; returns (revision before, revision after)."""
    before = current(engine)
    config = _config()
    with engine.begin() as connection:  # Alembic runs the migrations on one Core connection, in one transaction
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    return before, head()


def require_current(engine: Engine) -> None:
    """ConfigError telling the operator to run ``newsletter db upgrade`` unless the schema is current."""
    found = state(engine)
    if found != "current":
        what = "has no schema yet" if found == "empty" else f"is at revision {current(engine)}, not {head()}"
        raise ConfigError(f"the database {what}: run `newsletter db upgrade` first")
