"""Helpers of the scheduler tests: a catalog for the current week, readers, settings from the environment."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from newsletter.catalog.importer import import_files
from newsletter.config import Settings, load_settings
from newsletter.db import session_scope
from subscribers import store
from tests.conftest import FIXTURE_PAGES, TEST_SECRET_KEY


def seed_this_week(engine: Engine, readers: int = 6) -> None:
    """The fixture comparisons published today (so the scheduler's current week has them), and readers."""
    import_files(engine, sorted(FIXTURE_PAGES.glob("*.txt")), published=datetime.now(UTC).date())
    with session_scope(engine) as session:
        store.add_active(session, [f"reader{i}@example.com" for i in range(readers)])


def env_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str, **extra: Any) -> Settings:
    """Settings the jobs will read from the environment when the scheduler runs them with no arguments."""
    monkeypatch.chdir(tmp_path)  # no stray .env
    values = {"database_url": database_url, "provider": "file", "outbox_dir": str(tmp_path / "outbox"),
              "secret_key": TEST_SECRET_KEY, "postal_address": "1 Test Street, Testville",
              "from_address": "Weekly AI Tool Verdicts <verdicts@news.example.com>",
              "public_url": "https://app.example.com", "site_url": "https://site.example.com/compare/",
              "timezone": "UTC"} | {k: str(v) for k, v in extra.items()}
    for key, value in values.items():
        monkeypatch.setenv(f"NEWSLETTER_{key.upper()}", str(value))
    return load_settings()


def outbox(settings: Settings) -> list[Path]:
    """The .eml files the file provider wrote."""
    folder = Path(settings.outbox_dir)
    return sorted(folder.rglob("*.eml")) if folder.exists() else []
