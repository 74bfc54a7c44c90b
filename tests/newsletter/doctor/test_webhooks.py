"""Webhooks: the chosen provider's secret is set, and events arrive after sends (our own table); both databases."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from newsletter.clock import ManualClock
from newsletter.db import session_scope
from newsletter.doctor import Context, Finding
from newsletter.doctor.webhooks import check_webhooks
from subscribers.models import WebhookEvent
from tests.newsletter.doctor.test_database import sending_issue

Build = Callable[..., Context]
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SECRETS = {"postmark": {"postmark_webhook_username": "pm", "postmark_webhook_password": "pw"},
           "sendgrid": {"sendgrid_webhook_public_key": "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE"},
           "mailgun": {"mailgun_webhook_signing_key": "key-signing"},
           "resend": {"resend_webhook_secret": "whsec_abc"}}


def event(engine: Engine, provider: str, at: datetime) -> None:
    with session_scope(engine) as session:
        session.add(WebhookEvent(provider=provider, event_id=f"{provider}-{at.isoformat()}", received_at=at))


def check(context: Build, database_url: str, provider: str = "resend", now: datetime = NOW,
          **overrides: object) -> dict[str, Finding]:
    settings = {"provider": provider, "database_url": database_url, "clock": ManualClock(now)} | SECRETS[provider]
    return {f.name: f for f in check_webhooks(context(**(settings | overrides)))}


@pytest.mark.parametrize("provider", sorted(SECRETS))
def test_a_provider_without_its_webhook_secret_fails(context: Build, provider: str) -> None:
    [finding] = check_webhooks(context(provider=provider))
    assert finding.status == "fail" and f"https://app.example.com/webhooks/{provider}" in finding.fix


@pytest.mark.parametrize("provider", ["smtp", "file"])
def test_providers_without_events_say_so(context: Build, provider: str) -> None:
    [finding] = check_webhooks(context(provider=provider))
    assert finding.status == "skip"


def test_an_event_after_the_last_send_passes(engine: Engine, database_url: str, context: Build) -> None:
    sending_issue(engine, submitted=NOW - timedelta(hours=3))
    event(engine, "resend", NOW - timedelta(hours=2))
    event(engine, "postmark", NOW)  # another provider's events do not count
    found = check(context, database_url)
    assert found["Webhook secret"].status == "pass" and found["Webhook events"].status == "pass"
    assert "last event 2026-11-23 07:00 UTC, after the last send" in found["Webhook events"].detail


def test_no_event_since_a_send_hours_ago_warns(engine: Engine, database_url: str, context: Build) -> None:
    event(engine, "resend", NOW - timedelta(days=9))
    sending_issue(engine, submitted=NOW - timedelta(hours=3))
    events = check(context, database_url)["Webhook events"]
    assert events.status == "warn" and "none since the last send 3 h ago" in events.detail


def test_a_send_minutes_ago_is_given_time(engine: Engine, database_url: str, context: Build) -> None:
    sending_issue(engine, submitted=NOW - timedelta(minutes=10))
    events = check(context, database_url)["Webhook events"]
    assert events.status == "pass" and "no event ever" in events.detail


def test_nothing_sent_yet_expects_nothing(engine: Engine, database_url: str, context: Build) -> None:
    assert check(context, database_url, "mailgun")["Webhook events"].detail == "nothing sent yet; no event ever"


def test_events_are_not_looked_for_in_a_database_that_is_not_there(tmp_path: Path, context: Build) -> None:
    url = f"sqlite:///{tmp_path / 'absent.db'}"
    events = check(context, url)["Webhook events"]
    assert events.status == "skip" and "no SQLite database" in events.detail and not (tmp_path / "absent.db").exists()
