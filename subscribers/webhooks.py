"""Provider webhooks: verify each service's authentication, map events, apply them once.

Authentication, as shared/providers.md describes it: Postmark, HTTP Basic; SendGrid, ECDSA P-256/SHA-256 over
timestamp + body; Mailgun, HMAC-SHA256 of timestamp + token inside the body; Resend, Svix HMAC over
``id.timestamp.body``. What travels in headers is checked before the body is read, so a stranger's large body
is never read at all. Signed timestamps more than 5 minutes off are refused as replays; Mailgun's signature
does not cover the body, so its tokens are remembered for that window and a token reused with another body is
refused. Every service's event ids are remembered in the same transaction that applies the event: a repeat
changes nothing, and a failure leaves no trace, so the service's retry applies it.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key
from sqlalchemy import bindparam, delete, inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col, select

from newsletter import deliveries, logs, metrics
from newsletter.db import session_scope
from newsletter.errors import WebhookRejected
from newsletter.statuses import REACHABLE, DeliveryStatus, SubscriberStatus
from subscribers.models import Subscriber, WebhookEvent, WebhookToken
from subscribers.suppression import suppress
from subscribers.webhook_payloads import PARSERS, Event, Kind, load_json

__all__ = ["PARSERS", "Event", "Gate", "Kind", "Token", "WebhookRejected", "apply"]
WINDOW = 300
log = logging.getLogger("subscribers.webhooks")
# The subscriber status each event that stops mail leads to.
REPORTS = {"unsubscribe": SubscriberStatus.UNSUBSCRIBED, "hard_bounce": SubscriberStatus.BOUNCED,
           "complaint": SubscriberStatus.COMPLAINED}


@dataclass(frozen=True, slots=True)
class Token:
    """A verified Mailgun token, its signed time and the digest of the body it came with."""

    token: str
    signed_at: float
    body_digest: str


@dataclass(frozen=True, slots=True)
class Gate:
    """One service's checks: ``headers`` before the body is read (its result unused), ``body`` on the raw bytes."""

    headers: Callable[[Mapping[str, str], float], object]
    body: Callable[[Mapping[str, str], bytes, float], Token | None]


def _fresh(timestamp: str, now: float) -> float:
    try:
        moment = float(timestamp)
    except ValueError:
        raise WebhookRejected("timestamp is not a number") from None
    if not math.isfinite(moment) or abs(now - moment) > WINDOW:  # NaN compares false with everything
        raise WebhookRejected("timestamp outside the 5-minute window (a replay?)")
    return moment


def verify_postmark(headers: Mapping[str, str], body: bytes, *, username: str, password: str, now: float) -> None:
    """HTTP Basic credentials, compared in constant time; the body plays no part."""
    expected = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
    if not hmac.compare_digest(headers.get("authorization", "").encode(), expected.encode()):
        raise WebhookRejected("bad credentials")


def sendgrid_headers(headers: Mapping[str, str], now: float) -> bytes:
    """A fresh signed timestamp and a base64 signature in the headers; returns the decoded signature."""
    _fresh(headers.get("x-twilio-email-event-webhook-timestamp", ""), now)
    try:
        signature = base64.b64decode(headers.get("x-twilio-email-event-webhook-signature", ""), validate=True)
    except (binascii.Error, ValueError):
        raise WebhookRejected("signature header is not base64") from None
    if not signature:
        raise WebhookRejected("no signature header")
    return signature


def verify_sendgrid(headers: Mapping[str, str], body: bytes, *, public_key: str, now: float) -> None:
    """ECDSA P-256 / SHA-256 signature of timestamp + raw body, with SendGrid's public key."""
    signature = sendgrid_headers(headers, now)
    timestamp = headers["x-twilio-email-event-webhook-timestamp"]
    try:
        key = _public_key(public_key)
        key.verify(signature, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError, binascii.Error) as exc:
        raise WebhookRejected("bad signature") from exc


@functools.lru_cache(maxsize=8)
def _public_key(public_key: str) -> ec.EllipticCurvePublicKey:
    """The configured key, parsed once (not per webhook request); ValueError or binascii.Error when it is not one."""
    key = load_der_public_key(base64.b64decode(public_key))
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("the SendGrid webhook key is not an elliptic-curve public key")
    return key


def verify_mailgun(headers: Mapping[str, str], body: bytes, *, signing_key: str, now: float) -> Token:
    """Hex HMAC-SHA256 of timestamp + token, carried inside the JSON body; returns the token to remember."""
    payload = load_json(body)
    try:
        signature = payload["signature"]
        timestamp, token, given = signature["timestamp"], signature["token"], signature["signature"]
    except (KeyError, TypeError, IndexError):
        raise WebhookRejected("no signature in the body") from None
    if not (isinstance(timestamp, str | int) and isinstance(token, str) and isinstance(given, str)):
        raise WebhookRejected("signature fields are not strings")
    moment = _fresh(str(timestamp), now)
    expected = hmac.new(signing_key.encode(), (str(timestamp) + token).encode("utf-8", "surrogatepass"),
                        hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), given.encode("utf-8", "surrogatepass")):
        raise WebhookRejected("bad signature")
    return Token(token, moment, hashlib.sha256(body).hexdigest())


def resend_headers(headers: Mapping[str, str], now: float) -> list[str]:
    """A message id, a fresh timestamp and at least one ``v1,`` signature; returns the offered signatures."""
    if not headers.get("svix-id"):
        raise WebhookRejected("no svix-id header")
    _fresh(headers.get("svix-timestamp", ""), now)
    offered = [part[3:] for part in headers.get("svix-signature", "").split() if part.startswith("v1,")]
    if not offered:
        raise WebhookRejected("no v1 signature in svix-signature")
    return offered


def verify_resend(headers: Mapping[str, str], body: bytes, *, secret: str, now: float) -> None:
    """Svix: base64 HMAC-SHA256 of ``id.timestamp.body`` with the base64 secret after ``whsec_``."""
    offered = resend_headers(headers, now)
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"))
    except binascii.Error as exc:
        raise WebhookRejected("webhook secret is not base64") from exc
    signed = f"{headers['svix-id']}.{headers['svix-timestamp']}.".encode("utf-8", "surrogateescape") + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
    if not any(hmac.compare_digest(expected, candidate.encode("utf-8", "surrogateescape")) for candidate in offered):
        raise WebhookRejected("bad signature")


def apply(engine: Engine, events: list[Event], *, soft_limit: int, token: Token | None = None,
          now: datetime | None = None) -> int:
    """Apply the events not seen before, in one transaction with remembering them; returns how many changed something.

    Anything failing rolls back the whole request, ids and token included. A Mailgun ``token`` used before with
    another body raises WebhookRejected.
    """
    moment = now or datetime.now(UTC)
    with session_scope(engine) as session:
        if token is not None:
            _remember(session, token, moment)
        # An "accepted" event changes nothing twice (its settle is guarded), so it is not remembered: a send's
        # processed/sent events would otherwise add a row per message to the table of seen ids.
        fresh = _first_times(session, [event for event in events if event.kind != "ignored"], moment)
        applied = sum(_apply_one(session, event, soft_limit, moment) for event in fresh)
    metrics.webhook_events((event.provider, event.kind) for event in fresh)  # once committed: a repeat is not new
    for event in fresh:
        log.info("webhook event", extra={"provider": event.provider, "kind": event.kind, "delivery": event.delivery_id,
                                         "address": logs.hashed(event.address) if event.address else None})
    return applied


def _insert_ignoring_duplicates(session: Session, model: type[SQLModel], **values: Any) -> bool:
    # ON CONFLICT DO NOTHING instead of catching IntegrityError: a failed INSERT would abort PostgreSQL's
    # transaction, and a concurrent insert of the same key waits for the other transaction's outcome.
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    table = inspect(model).local_table
    statement = dialect.insert(table).values(**values).on_conflict_do_nothing().returning(table.c.id)
    return session.execute(statement).first() is not None


def _first_times(session: Session, events: list[Event], moment: datetime) -> list[Event]:
    """The events to apply: every "accepted" one, and the others whose id is remembered here for the first time (a
    repeat within the batch counts once). One INSERT for the whole batch: a round trip per event would be most of
    a 100-event request's time."""
    remembered = [event for event in events if event.kind != "accepted"]
    new: set[str] = set()
    if remembered:
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        table = inspect(WebhookEvent).local_table
        rows = [{"provider": e.provider, "event_id": e.event_id, "received_at": moment} for e in remembered]
        statement = dialect.insert(table).values(rows).on_conflict_do_nothing().returning(table.c.event_id)
        new = set(session.execute(statement).scalars())
    fresh = []
    for event in events:
        if event.kind == "accepted" or event.event_id in new:
            new.discard(event.event_id)
            fresh.append(event)
    return fresh


def _remember(session: Session, token: Token, moment: datetime) -> None:
    # A token signed longer ago than the window would be refused as stale anyway; twice the window allows for
    # clock skew between web workers.
    session.execute(delete(WebhookToken).where(col(WebhookToken.signed_at) < moment - timedelta(seconds=2 * WINDOW)))
    digest = hashlib.sha256(token.token.encode("utf-8", "surrogatepass")).hexdigest()
    signed_at = datetime.fromtimestamp(token.signed_at, UTC)
    if _insert_ignoring_duplicates(session, WebhookToken, digest=digest,
                                   body_digest=token.body_digest, signed_at=signed_at):
        return
    stored = session.exec(select(WebhookToken.body_digest).where(WebhookToken.digest == digest)).one_or_none()
    if stored != token.body_digest:  # the same body again is the service's own retry: its events dedupe
        raise WebhookRejected("this signature was already used with another body (a replay?)")


def _status_of(session: Session, subscriber_id: int) -> str | None:
    """The reader's status alone, by a statement built once: a ``delivered`` event needs no more, and loading the
    whole row was a third of a webhook batch's time."""
    return session.execute(STATUS_OF, {"id": subscriber_id}).scalar()


SUBSCRIBERS = Subscriber.__table__  # type: ignore[attr-defined]
STATUS_OF = select(SUBSCRIBERS.c.status).where(SUBSCRIBERS.c.id == bindparam("id"))


def _apply_one(session: Session, event: Event, soft_limit: int, moment: datetime) -> int:
    """Apply one event to the subscriber it names (by our delivery id, else by address); 1 if one was found.

    Any event naming our delivery id proves the service took that message: a delivery whose outcome was unknown
    becomes ``submitted`` first, then follows the event (a bounce marks it bounced)."""
    subscriber = deliveries.subscriber_of(session, event.delivery_id) if event.delivery_id else None
    settled = subscriber is not None and deliveries.settle_reported(session, event.delivery_id or 0, moment=moment)
    if event.kind == "accepted":
        return int(settled)
    status = _status_of(session, subscriber) if event.kind == "delivered" and subscriber is not None else None
    if status in REACHABLE:
        return 1  # a reader still reachable: suppress() would change nothing and withdraw nothing, so skip its queries
    if status is not None and subscriber is not None:
        # A reader who left: only suppress()'s dating and withdrawal apply, and they need no loaded row.
        suppress(session, [subscriber], SubscriberStatus.BOUNCED, channel=event.provider, moment=moment,
                 replaces=frozenset())
        return 1
    row = session.get(Subscriber, subscriber) if subscriber is not None else None
    if row is None and event.address:
        row = session.exec(select(Subscriber).where(Subscriber.email == event.address.lower())).first()
    if row is None or row.id is None:
        return 0
    if event.kind == "delivered" and row.status in REACHABLE:
        return 1  # a reader still reachable: suppress() would change nothing and withdraw nothing, so skip its queries
    to, replaces = REPORTS.get(event.kind, SubscriberStatus.BOUNCED), None
    if event.kind == "soft_bounce":
        row.soft_bounces += 1
        replaces = REACHABLE if row.soft_bounces >= soft_limit else frozenset()
    elif event.kind not in REPORTS:  # "delivered"
        replaces = frozenset()
    # With nothing to replace, the status stays; a reader bounced already still gets the time they left.
    suppress(session, [row.id], to, channel=event.provider, moment=moment, replaces=replaces)
    if subscriber is not None and event.kind in ("hard_bounce", "complaint"):
        assert event.delivery_id is not None
        deliveries.mark_reported(session, event.delivery_id, DeliveryStatus(to))
    return 1

