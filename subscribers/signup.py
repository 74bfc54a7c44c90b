"""Double opt-in: record a sign-up with its consent, confirm it, change an address, set preferences.

Every function answers the same way whether an address is new, pending or active, so the pages built on them
never reveal who subscribes.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import delete, func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from newsletter import deliveries, metrics
from newsletter.db import session_scope
from newsletter.errors import SubscriberError
from newsletter.statuses import REACHABLE, REPORTED, SubscriberStatus
from newsletter.zones import LocalTime
from subscribers.models import AddressChangeMail, Subscriber
from subscribers.store import categories_text, is_erased, normalise_address, zone_text

CONSENT_TEXT = ("Send me Weekly AI Tool Verdicts: one email a week with head-to-head verdicts on new AI tools, "
                "for the categories I chose. I can unsubscribe from any issue with one click.")
SUPPRESSED = REPORTED
ADDRESS_CHANGES_PER_DAY = 3


@dataclass(frozen=True, slots=True)
class Consent:
    """Where a consent or a confirmation came from, and the wording shown."""

    ip: str | None
    user_agent: str | None
    text: str = CONSENT_TEXT


def request_subscription(engine: Engine, address: str, *, categories: Sequence[str], free_only: bool,
                         consent: Consent, resend_after: timedelta, secret: str,
                         now: datetime | None = None, time_zone: str | None = None) -> Subscriber | None:
    """Record a sign-up; the subscriber to send a confirmation to now, or None (active, suppressed, erased earlier,
    or too soon).

    SubscriberError for an address that isn't one, or a ``time_zone`` that is not an IANA name (blank: the
    publication's).
    """
    email = normalise_address(address)
    zone = zone_text(time_zone)
    moment = now or datetime.now(UTC)
    with session_scope(engine) as session:
        row = session.exec(select(Subscriber).where(Subscriber.email == email)).first()
        if row is None and is_erased(session, email, secret):
            return None  # erased for good: the same page as everyone, and no mail
        if row is None:  # new: fresh consent, confirmed by double opt-in
            row = Subscriber(email=email, status=SubscriberStatus.PENDING, created_at=moment, source="signup")
            session.add(row)
        elif not _may_ask(row, moment - resend_after):
            return None
        row.categories, row.free_only, row.time_zone = categories_text(categories), free_only, zone
        _ask(row, consent, moment)
    metrics.signup("requested")  # once committed
    return row


def request_resubscription(engine: Engine, subscriber_id: int, *, consent: Consent, resend_after: timedelta,
                           now: datetime | None = None) -> Subscriber | None:
    """A reader who left asks to come back with their old preferences: pending again, so they confirm again.

    Returns the subscriber to send a confirmation to now, or None (active, suppressed, or too soon);
    SubscriberError for an unknown or erased subscriber.
    """
    moment = now or datetime.now(UTC)
    with session_scope(engine) as session:
        row = _live(session, subscriber_id)
        if not _may_ask(row, moment - resend_after):
            return None
        _ask(row, consent, moment)
        return row


def confirmation_not_sent(engine: Engine, subscriber_id: int, *, resend_after: timedelta) -> None:
    """The last confirmation never left (the provider failed): let the pending reader ask again at once."""
    with session_scope(engine) as session:
        row = session.get(Subscriber, subscriber_id)
        if row is not None and row.status == SubscriberStatus.PENDING and row.confirmation_sent_at is not None:
            # Moved back rather than cleared: clearing would age the sign-up to its creation for the purge.
            row.confirmation_sent_at = _aware(row.confirmation_sent_at) - resend_after


def _may_ask(row: Subscriber, since: datetime) -> bool:
    """Whether a sign-up of an existing row may (re)start double opt-in now."""
    if row.status in (SubscriberStatus.ACTIVE, *SUPPRESSED):
        return False  # nothing to confirm, or never to be mailed again
    return not (row.status == SubscriberStatus.PENDING and _recent(row.confirmation_sent_at, since))  # not a moment ago


def _ask(row: Subscriber, consent: Consent, moment: datetime) -> None:
    """Make ``row`` pending with this consent, its confirmation sent at ``moment``."""
    row.status = SubscriberStatus.PENDING
    row.consent_at, row.consent_ip, row.consent_user_agent, row.consent_text = (
        moment, consent.ip, (consent.user_agent or "")[:400] or None, consent.text)
    row.confirmation_sent_at = moment


ConfirmationKind = Literal["sign-up", "change", "done"]


@dataclass(frozen=True, slots=True)
class Confirmation:
    """What a confirmation link would do now: activate a ``sign-up``, switch to a new address (``change``), or
    nothing because it is ``done`` already; with the subscriber as they are."""

    kind: ConfirmationKind
    subscriber: Subscriber


def confirmation(engine: Engine, subscriber_id: int, address: str) -> Confirmation:
    """What ``confirm`` would do with this link now, changing nothing; SubscriberError if it no longer applies.

    The page a confirmation link opens is built from this: mail scanners fetch links, so opening one must not act.
    """
    with session_scope(engine) as session:
        row, kind = _confirmable(session, subscriber_id, address)
        return Confirmation(kind, row)


def confirm(engine: Engine, subscriber_id: int, address: str, *, consent: Consent,
            now: datetime | None = None) -> Subscriber:
    """Activate a pending sign-up, or switch to a new address; SubscriberError if the link no longer applies.

    Only a ``pending`` row is activated: mail scanners fetch old links, and a reader who left (unsubscribed,
    erased, bounced, complained) must never be brought back by one. A second click while active changes nothing.
    """
    moment = now or datetime.now(UTC)
    address = normalise_address(address)  # a link minted before domains were stored in ASCII names the Unicode form
    with session_scope(engine) as session:
        row, kind = _confirmable(session, subscriber_id, address)
        if kind == "change":  # the status stays what it is
            row.email, row.pending_email = address, None
        elif kind == "sign-up":
            row.status, row.confirmed_at = SubscriberStatus.ACTIVE, moment
            row.unsubscribed_at = row.unsubscribe_channel = None  # a reader who came back through double opt-in
        else:
            return row  # already active: a repeat click (or a scanner) leaves the evidence of the first one
        row.confirmed_ip, row.confirmed_user_agent = consent.ip, (consent.user_agent or "")[:400] or None
    metrics.signup("confirmed" if kind == "sign-up" else "address_changed")  # once committed
    return row


def _confirmable(session: Session, subscriber_id: int, address: str) -> tuple[Subscriber, ConfirmationKind]:
    """The subscriber and what confirming ``address`` would do; SubscriberError if the link no longer applies."""
    row = session.get(Subscriber, subscriber_id)
    if row is None or row.erased or row.status in SUPPRESSED:
        raise SubscriberError("this confirmation link no longer applies")
    if address == row.pending_email:
        if session.exec(select(Subscriber).where(Subscriber.email == address)).first() is not None:
            raise SubscriberError("that address is already subscribed")
        return row, "change"
    if address != row.email or row.status not in REACHABLE:
        raise SubscriberError("this confirmation link no longer applies")
    return row, "sign-up" if row.status == SubscriberStatus.PENDING else "done"


def update_preferences(engine: Engine, subscriber_id: int, *, categories: Sequence[str], free_only: bool,
                       pause: int, time_zone: str | None = None, local: LocalTime | None = None,
                       now: datetime | None = None) -> Subscriber:
    """Save categories, free-only, a pause of the next ``pause`` issues (0 resumes at once) and the time zone
    (blank: the publication's). With ``local`` delivery, a new zone also moves the reader's deliveries still
    waiting for their wave to their next local send time there."""
    if not 0 <= pause <= 12:
        raise SubscriberError("a pause is 0 to 12 issues")
    zone = zone_text(time_zone)
    with session_scope(engine) as session:
        row = _live(session, subscriber_id)
        moved = zone != row.time_zone
        row.categories, row.free_only, row.pause_remaining = categories_text(categories), free_only, pause
        row.time_zone = zone
        if moved and local is not None:
            deliveries.reschedule_reader(session, subscriber_id, zone, local=local, now=now or datetime.now(UTC))
        return row


@dataclass(frozen=True, slots=True)
class AddressChange:
    """The answer to an address change: the address to confirm, whether to email it, or why not now."""

    address: str
    send: bool
    refused: str | None = None


def request_address_change(engine: Engine, subscriber_id: int, new_address: str, *, secret: str,
                           resend_after: timedelta, now: datetime | None = None) -> AddressChange:
    """Remember the new address until its owner confirms it; the old one keeps getting mail meanwhile.

    Each target gets at most one confirmation per ``resend_after`` (whoever asks) and each subscriber asks at
    most ADDRESS_CHANGES_PER_DAY times a day: the page must not become a way to flood someone's inbox. An
    address erased earlier gets the same answers but no mail and is not remembered: it stays suppressed.
    """
    email = normalise_address(new_address)
    moment = now or datetime.now(UTC)
    target = _target(email, secret)
    with session_scope(engine) as session:
        row = _live(session, subscriber_id, lock=True)  # one subscriber's requests are counted one at a time
        if email == row.email:
            raise SubscriberError("that is already your address")
        refused = _change_refused(session, subscriber_id, target, email, moment, resend_after)
        if refused:  # the day-old mails it pruned on the way stay pruned
            return AddressChange(email, send=False, refused=refused)
        session.add(AddressChangeMail(subscriber_id=subscriber_id, target=target, sent_at=moment))
        erased = is_erased(session, email, secret)
        if not erased:
            row.pending_email = email
        return AddressChange(email, send=not erased)


def _change_refused(session: Session, subscriber_id: int, target: str, email: str, moment: datetime,
                    resend_after: timedelta) -> str | None:
    """Why no confirmation may go out now, or None; forgets mails older than a day on the way."""
    session.exec(delete(AddressChangeMail).where(col(AddressChangeMail.sent_at) < moment - timedelta(days=1)))
    recent = select(func.count()).select_from(AddressChangeMail)
    if session.exec(recent.where(AddressChangeMail.target == target,
                                 col(AddressChangeMail.sent_at) > moment - resend_after)).one():
        minutes = max(1, round(resend_after.total_seconds() / 60))
        return f"a confirmation went to {email} a moment ago; use it, or ask again in {minutes} minutes"
    if session.exec(recent.where(AddressChangeMail.subscriber_id == subscriber_id)).one() \
            >= ADDRESS_CHANGES_PER_DAY:
        return f"at most {ADDRESS_CHANGES_PER_DAY} address changes a day; try again tomorrow"
    return None


def _target(address: str, secret: str) -> str:
    """The salted hash an address-change target is counted under."""
    return hmac.new(secret.encode(), b"address-change:" + address.encode(), hashlib.sha256).hexdigest()


def _live(session: Session, subscriber_id: int, *, lock: bool = False) -> Subscriber:
    row = session.get(Subscriber, subscriber_id, with_for_update=lock)
    if row is None or row.erased:
        raise SubscriberError("this link no longer applies")
    return row


def _recent(sent: datetime | None, since: datetime) -> bool:
    return sent is not None and _aware(sent) > since


def _aware(moment: datetime) -> datetime:
    """SQLite hands datetimes back without their zone; they were stored in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
