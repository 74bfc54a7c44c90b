"""Double opt-in: record a sign-up with its consent, confirm it, change an address, set preferences.

Every function answers the same way whether an address is new, pending or active, so the pages built on them
never reveal who subscribes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from newsletter.errors import SubscriberError
from subscribers.models import Subscriber
from subscribers.store import categories_text, normalise_address

CONSENT_TEXT = ("Send me Weekly AI Tool Verdicts: one email a week with head-to-head verdicts on new AI tools, "
                "for the categories I chose. I can unsubscribe from any issue with one click.")
SUPPRESSED = ("bounced", "complained")


@dataclass(frozen=True, slots=True)
class Consent:
    """Where a consent or a confirmation came from, and the wording shown."""

    ip: str | None
    user_agent: str | None
    text: str = CONSENT_TEXT


def request_subscription(engine: Engine, address: str, *, categories: Sequence[str], free_only: bool,
                         consent: Consent, resend_after: timedelta,
                         now: datetime | None = None) -> Subscriber | None:
    """Record a sign-up; the subscriber to send a confirmation to now, or None (active, suppressed, or too soon).

    SubscriberError only for an address that isn't one.
    """
    email = normalise_address(address)
    moment = now or datetime.now(UTC)
    with Session(engine, expire_on_commit=False) as session:
        row = session.exec(select(Subscriber).where(Subscriber.email == email)).first()
        if row is None:  # new, or erased earlier: either way this is fresh consent, confirmed by double opt-in
            row = Subscriber(email=email, status="pending", created_at=moment, source="signup")
            session.add(row)
        elif row.status in ("active", *SUPPRESSED):
            return None  # nothing to confirm, or never to be mailed again
        elif row.status == "pending" and _recent(row.confirmation_sent_at, moment - resend_after):
            return None  # a confirmation went out a moment ago
        row.status = "pending"
        row.categories, row.free_only = categories_text(categories), free_only
        row.consent_at, row.consent_ip, row.consent_user_agent, row.consent_text = (
            moment, consent.ip, (consent.user_agent or "")[:400] or None, consent.text)
        row.confirmation_sent_at = moment
        session.commit()
        return row


def confirm(engine: Engine, subscriber_id: int, address: str, *, consent: Consent,
            now: datetime | None = None) -> Subscriber:
    """Activate a pending sign-up, or switch to a new address; SubscriberError if the link no longer applies."""
    moment = now or datetime.now(UTC)
    address = normalise_address(address)  # a link minted before domains were stored in ASCII names the Unicode form
    with Session(engine, expire_on_commit=False) as session:
        row = session.get(Subscriber, subscriber_id)
        if row is None or row.status in SUPPRESSED:
            raise SubscriberError("this confirmation link no longer applies")
        if address == row.pending_email:
            taken = session.exec(select(Subscriber).where(Subscriber.email == address)).first()
            if taken is not None:
                raise SubscriberError("that address is already subscribed")
            row.email, row.pending_email = address, None
        elif address != row.email:
            raise SubscriberError("this confirmation link no longer applies")
        elif row.status != "active":
            row.status = "active"
        row.confirmed_at = row.confirmed_at if row.status == "active" and row.confirmed_at else moment
        row.confirmed_ip, row.confirmed_user_agent = consent.ip, (consent.user_agent or "")[:400] or None
        session.commit()
        return row


def update_preferences(engine: Engine, subscriber_id: int, *, categories: Sequence[str], free_only: bool,
                       pause: int) -> Subscriber:
    """Save categories, free-only and a pause of the next ``pause`` issues (0 resumes at once)."""
    if not 0 <= pause <= 12:
        raise SubscriberError("a pause is 0 to 12 issues")
    with Session(engine, expire_on_commit=False) as session:
        row = _live(session, subscriber_id)
        row.categories, row.free_only, row.pause_remaining = categories_text(categories), free_only, pause
        session.commit()
        return row


def request_address_change(engine: Engine, subscriber_id: int, new_address: str) -> Subscriber:
    """Remember the new address until its owner confirms it; the old one keeps getting mail meanwhile."""
    email = normalise_address(new_address)
    with Session(engine, expire_on_commit=False) as session:
        row = _live(session, subscriber_id)
        if email == row.email:
            raise SubscriberError("that is already your address")
        row.pending_email = email
        session.commit()
        return row


def _live(session: Session, subscriber_id: int) -> Subscriber:
    row = session.get(Subscriber, subscriber_id)
    if row is None or row.erased:
        raise SubscriberError("this link no longer applies")
    return row


def _recent(sent: datetime | None, since: datetime) -> bool:
    return sent is not None and _aware(sent) > since


def _aware(moment: datetime) -> datetime:
    """SQLite hands datetimes back without their zone; they were stored in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
