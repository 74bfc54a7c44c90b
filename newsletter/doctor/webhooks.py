"""Webhooks: the chosen provider's secret is configured, and events arrive (from our own ``webhook_event`` table).

Bounces and complaints reach us only through webhooks: without them suppressed readers keep getting mail and the
complaint rate climbs unseen. An event is expected within the hour after a send; none by then is a warning.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import column, func, select, table
from sqlalchemy.engine import Engine
from sqlmodel.sql.sqltypes import UTCDateTime

from newsletter.config import Settings
from newsletter.doctor.context import Context
from newsletter.doctor.facts import named
from newsletter.doctor.findings import Finding, failed, passed, skipped, warned
from newsletter.models import DeliveryRow

GRACE = timedelta(hours=1)
# The subscriber domain owns this table; the core reads it by name, as it imports nothing of ``subscribers``.
EVENTS = table("webhook_event", column("provider"), column("received_at", UTCDateTime()))
SECRETS = {"postmark": "NEWSLETTER_POSTMARK_WEBHOOK_USERNAME and NEWSLETTER_POSTMARK_WEBHOOK_PASSWORD",
           "sendgrid": "NEWSLETTER_SENDGRID_WEBHOOK_PUBLIC_KEY", "mailgun": "NEWSLETTER_MAILGUN_WEBHOOK_SIGNING_KEY",
           "resend": "NEWSLETTER_RESEND_WEBHOOK_SECRET", "ses": "NEWSLETTER_SES_SNS_TOPIC_ARNS"}


def configured(settings: Settings) -> bool:
    """Whether the provider's webhook secret is set, so the app accepts (and verifies) its events."""
    return {"postmark": bool(settings.postmark_webhook_username and settings.postmark_webhook_password),
            "sendgrid": bool(settings.sendgrid_webhook_public_key),
            "mailgun": bool(settings.mailgun_webhook_signing_key),
            "resend": bool(settings.resend_webhook_secret),
            "ses": bool(settings.sns_topic_arns)}.get(settings.provider, False)


def check_webhooks(ctx: Context) -> list[Finding]:
    """The secret, then how recent the last event is compared with the last send."""
    provider = ctx.settings.provider
    if provider not in SECRETS:
        return [skipped("Webhooks", f"not applicable: the {provider} provider sends no events")]
    url = f"{str(ctx.settings.public_url).rstrip('/')}/webhooks/{provider}"
    if not configured(ctx.settings):
        return [failed("Webhook secret", f"{SECRETS[provider]} not set: {url} answers 404 to every event",
                       _setup(provider, url))]
    secret = passed("Webhook secret", f"{named(provider)} events are verified at {url}")
    problem = ctx.database_problem()
    if problem:
        return [secret, skipped("Webhook events", f"not checked: {problem}")]
    return [secret, events(ctx.wiring.engine, provider, now=ctx.clock.now(), url=url)]


def _setup(provider: str, url: str) -> str:
    """How to turn the provider's events on (SES publishes through SNS, so its "secret" is the topic's ARN)."""
    if provider == "ses":
        return (f"publish bounces and complaints from your configuration set to an SNS topic, subscribe {url} to it "
                "over HTTPS, and set NEWSLETTER_SES_SNS_TOPIC_ARNS to the topic's ARN")
    return f"create the webhook at {named(provider)} pointing at {url} and set {SECRETS[provider]}"


def last_event(engine: Engine, provider: str) -> datetime | None:
    """When the last event from ``provider`` was received."""
    with engine.connect() as connection:
        found: datetime | None = connection.execute(
            select(func.max(EVENTS.c.received_at)).where(EVENTS.c.provider == provider)).scalar()
    return found


def last_send(engine: Engine) -> datetime | None:
    """When the provider last accepted a message."""
    with engine.connect() as connection:
        found: datetime | None = connection.execute(
            select(func.max(DeliveryRow.__table__.c.submitted_at))).scalar()  # type: ignore[attr-defined]
    return found


def events(engine: Engine, provider: str, *, now: datetime, url: str) -> Finding:
    """Pass when an event came after the last send (or nothing was sent yet), warn when none has an hour after."""
    name = "Webhook events"
    event, sent = last_event(engine, provider), last_send(engine)
    seen = f"last event {event:%Y-%m-%d %H:%M} UTC" if event else "no event ever"
    if sent is None:
        return passed(name, f"nothing sent yet; {seen}")
    if event is not None and event >= sent:
        return passed(name, f"{seen}, after the last send ({sent:%Y-%m-%d %H:%M} UTC)")
    if now - sent < GRACE:
        return passed(name, f"last send {_ago(now - sent)} ago; {seen} (events follow within the hour)")
    return warned(name, f"{seen}, none since the last send {_ago(now - sent)} ago: bounces and complaints are "
                        "not reaching us",
                  f"check the webhook at {named(provider)} points at {url} with the same secret")


def _ago(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h"
