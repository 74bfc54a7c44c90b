"""The composition object: built once from settings, each part made when first used, closed at the end."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine

from newsletter import wiring
from newsletter.clock import ManualClock
from newsletter.config import Settings
from newsletter.errors import ConfigError
from newsletter.providers.memory import MemoryProvider


def test_parts_are_built_once_and_only_when_asked(make_settings: Callable[..., Settings], engine: Engine,
                                                  database_url: str) -> None:
    clock, outbox = ManualClock(), MemoryProvider()
    settings = make_settings(database_url=database_url, batch_size=250, lease_seconds=90)
    with wiring.build(settings, clock=clock, provider=outbox) as built:
        assert built.engine is built.engine and built.recipients is built.recipients
        assert built.provider() is outbox and built.clock is clock
        assert built.send_options == wiring.SendOptions(250, settings.concurrency, settings.rate_limit,
                                                        timedelta(seconds=90))
        assert built.envelope.domain == "news.example.com"


def test_a_command_that_needs_no_secret_never_asks_for_one(make_settings: Callable[..., Settings], engine: Engine,
                                                           database_url: str) -> None:
    with wiring.build(make_settings(database_url=database_url, secret_key=None)) as built:
        assert built.engine.dialect.name in {"sqlite", "postgresql"}
        with pytest.raises(ConfigError, match="NEWSLETTER_SECRET_KEY"):
            _ = built.recipients
