"""The subscriber table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text
from sqlmodel import Field, SQLModel

from newsletter.statuses import SubscriberStatus

STATUSES = tuple(SubscriberStatus)


class Subscriber(SQLModel, table=True):
    """One address and its preferences. ``categories`` is a sorted comma list; empty means every category."""

    __tablename__ = "subscriber"
    __table_args__ = (Index("ix_subscriber_status_prefs", "status", "categories", "free_only", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(unique=True, index=True, max_length=320)
    name: str | None = Field(default=None, max_length=200)
    status: str = Field(default=SubscriberStatus.PENDING, max_length=12)
    categories: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    free_only: bool = False
    # An IANA zone name for local delivery; None means the publication's zone (NEWSLETTER_TIMEZONE).
    time_zone: str | None = Field(default=None, max_length=64)
    source: str = Field(default="operator", max_length=40)
    created_at: datetime
    confirmed_at: datetime | None = None
    unsubscribed_at: datetime | None = None
    unsubscribe_channel: str | None = Field(default=None, max_length=40)
    # Consent evidence: what was shown and agreed to, when, from where; and the confirmation click.
    consent_at: datetime | None = None
    consent_ip: str | None = Field(default=None, max_length=64)
    consent_user_agent: str | None = Field(default=None, max_length=400)
    consent_text: str | None = Field(default=None, sa_column=Column(Text))
    confirmation_sent_at: datetime | None = None
    confirmed_ip: str | None = Field(default=None, max_length=64)
    confirmed_user_agent: str | None = Field(default=None, max_length=400)
    pending_email: str | None = Field(default=None, max_length=320)
    pause_remaining: int = 0
    soft_bounces: int = 0
    erased: bool = False


class WebhookEvent(SQLModel, table=True):
    """A provider event already applied: replays and retries of the same event change nothing."""

    __tablename__ = "webhook_event"

    id: int | None = Field(default=None, primary_key=True)
    provider: str = Field(max_length=20)
    event_id: str = Field(max_length=300, unique=True)
    received_at: datetime


class AddressChangeMail(SQLModel, table=True):
    """An address-change confirmation emailed, kept a day so every web worker limits them alike.

    ``target`` is a salted hash, not the address: the target may be someone who never subscribed.
    """

    __tablename__ = "address_change_mail"

    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int = Field(index=True)
    target: str = Field(max_length=64, index=True)
    sent_at: datetime = Field(index=True)


class WebhookToken(SQLModel, table=True):
    """A Mailgun signature token already used, kept for the replay window; the signature doesn't cover the body."""

    __tablename__ = "webhook_token"

    id: int | None = Field(default=None, primary_key=True)
    digest: str = Field(max_length=64, unique=True)  # SHA-256 of the token: fixed width whatever was signed
    body_digest: str = Field(max_length=64)
    signed_at: datetime = Field(index=True)
