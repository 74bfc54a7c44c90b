"""Applying webhook events in the subscriber domain: Mailgun tokens remembered for the replay window, then pruned."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from newsletter.errors import WebhookRejected
from subscribers.models import WebhookToken
from subscribers.webhooks import Token, apply


def test_mailgun_tokens_are_kept_for_the_window_then_pruned(engine: Engine) -> None:
    start = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    apply(engine, [], soft_limit=3, token=Token("a" * 50, start.timestamp(), "1" * 64), now=start)
    later = start + timedelta(minutes=4)
    with pytest.raises(WebhookRejected):
        apply(engine, [], soft_limit=3, token=Token("a" * 50, start.timestamp(), "2" * 64), now=later)
    much_later = start + timedelta(minutes=11)
    apply(engine, [], soft_limit=3, token=Token("b" * 50, much_later.timestamp(), "3" * 64), now=much_later)
    with Session(engine) as session:
        kept = session.exec(select(WebhookToken.digest)).all()
    assert kept == [hashlib.sha256(b"b" * 50).hexdigest()]  # the old token is gone, and with it its row
