"""Shared fixtures: both database engines, factories for catalog values, settings, seed pages."""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import SQLModel

from newsletter import migrate, wiring
from newsletter.config import Settings
from newsletter.db import make_engine
from newsletter.values import CommunityVotes, Comparison, PanelVerdict, Review, Side, Tool

ROOT = Path(__file__).resolve().parent.parent
SHARED_SEEDS = ROOT.parent / "shared" / "seeds"
FIXTURE_PAGES = Path(__file__).parent / "fixtures" / "pages"
SITE_PAGES = Path(__file__).parent / "fixtures" / "site"
PG_URL = os.environ.get("NEWSLETTER_TEST_DATABASE_URL")
# Random-looking, as the settings demand: import this rather than writing a key into a test.
TEST_SECRET_KEY = "qJybSUZbdT-b6XhtwjLRp1EsLvTfdX-B3R3IVwOXl-k"
_ = wiring  # importing wiring registers the subscriber table


def seed_pages() -> list[Path]:
    """Site-like pages that share tools: the project's own, plus ../shared/seeds as extra input when present.

    The project's own set always runs, so the suite asserts the same things with or without ``../shared``.
    """
    extra = sorted(SHARED_SEEDS.glob("*.txt")) if SHARED_SEEDS.is_dir() else []
    return sorted(SITE_PAGES.glob("*.txt")) + extra


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts from no ``NEWSLETTER_*`` variable but the test database's, whatever the caller exported."""
    for name in list(os.environ):
        if name.startswith("NEWSLETTER_") and name != "NEWSLETTER_TEST_DATABASE_URL":
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def pg_schema_engine() -> Iterator[Engine | None]:
    """An engine on a fresh PostgreSQL schema for this run, dropped at the end; None without a URL."""
    if not PG_URL:
        yield None
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(PG_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    except OperationalError as exc:
        pytest.fail(f"NEWSLETTER_TEST_DATABASE_URL={PG_URL} is unreachable: {exc}")
    # The search path travels in the URL, so code that builds its own engine from it (CLI) lands here too.
    separator = "&" if "?" in PG_URL else "?"
    engine = make_engine(f"{PG_URL}{separator}options=-csearch_path%3D{schema}")
    migrate.upgrade(engine)
    yield engine
    engine.dispose()
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path, pg_schema_engine: Engine | None) -> Iterator[Engine]:
    """An empty database with every table: a fresh SQLite file, or the run's PostgreSQL schema truncated."""
    if request.param == "sqlite":
        sqlite = make_engine(f"sqlite:///{tmp_path / 'test.db'}")
        migrate.upgrade(sqlite)
        yield sqlite
        sqlite.dispose()
        return
    if pg_schema_engine is None:
        if os.environ.get("CI"):
            pytest.fail("CI must test PostgreSQL: set NEWSLETTER_TEST_DATABASE_URL")
        pytest.skip("PostgreSQL tests need NEWSLETTER_TEST_DATABASE_URL")
    tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with pg_schema_engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        conn.execute(text("DROP TABLE IF EXISTS apscheduler_jobs"))  # the scheduler's own table, made on start
    yield pg_schema_engine


@pytest.fixture
def database_url(engine: Engine) -> str:
    """The URL of ``engine``, for code that builds its own engine from settings (CLI, subprocesses)."""
    return engine.url.render_as_string(hide_password=False)


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings with no .env and test defaults; keyword overrides win."""
    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": f"sqlite:///{tmp_path / 'settings.db'}", "outbox_dir": tmp_path / "outbox",
            "secret_key": TEST_SECRET_KEY, "postal_address": "1 Test Street, Testville",
            "from_address": "Weekly AI Tool Verdicts <verdicts@news.example.com>",
            "public_url": "https://app.example.com", "site_url": "https://site.example.com/compare/",
        }
        return Settings(_env_file=None, **(values | overrides))  # type: ignore[call-arg]
    return build


@pytest.fixture
def make_tool() -> Callable[..., Tool]:
    """Tool values with sensible defaults."""
    def build(**overrides: Any) -> Tool:
        name = overrides.pop("name", "Toolname")
        values: dict[str, Any] = {
            "slug": name.lower().replace(" ", "-"), "name": name, "tagline": f"{name} does things",
            "description": f"{name} is a tool.", "category": "Developer Tools", "pricing_tier": "Paid",
            "pricing_note": None, "published": date(2026, 11, 16),
        }
        return Tool(**(values | overrides))
    return build


@pytest.fixture
def make_comparison(make_tool: Callable[..., Tool]) -> Callable[..., Comparison]:
    """Comparison values: two tools, four scored reviews each, verdicts from the given ship counts."""
    def side(tool: Tool, ship: int, scores: tuple[int, ...] | None) -> Side:
        scores = scores or tuple(70 if i < ship else 40 for i in range(4))
        reviews = tuple(Review(p, f"{p} on {tool.name}. Second sentence here.", s, s >= 60)
                        for p, s in zip(("Builder", "Skeptic", "Futurist", "Founder"), scores, strict=True))
        percent = round(100 * ship / 4)
        label = "Ship" if percent > 50 else "Mixed" if percent == 50 else "Skip"
        return Side(tool, PanelVerdict(percent, label, ship, 4), None, reviews)

    def build(a: Tool | None = None, b: Tool | None = None, *, published: date = date(2026, 11, 18),
              ships: tuple[int, int] = (3, 2), scores: tuple[tuple[int, ...] | None, ...] = (None, None),
              community: CommunityVotes | None = None) -> Comparison:
        a = a or make_tool(name="Alpha")
        b = b or make_tool(name="Beta")
        sides = (side(a, ships[0], scores[0]), side(b, ships[1], scores[1]))
        if community:
            sides = (Side(a, sides[0].verdict, community, sides[0].reviews), sides[1])
        return Comparison(f"{a.slug}-vs-{b.slug}", f"{a.name} vs {b.name}", published, sides)
    return build


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("CI must run browser tests: apt-get install -y chromium")
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def axe() -> Path:
    """axe-core's script for the browser tests, installed with npm into the user's cache the first time."""
    from tests.axe import install

    return install()


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """Put the root logger back after each test: CLI commands configure logging onto the runner's stream."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
