"""Provider webhooks: verify each service's authentication on the raw body, map events, apply them once.

Authentication, as shared/providers.md describes it: Postmark, HTTP Basic; SendGrid, ECDSA P-256/SHA-256 over
timestamp + body; Mailgun, HMAC-SHA256 of timestamp + token inside the body; Resend, Svix HMAC over
``id.timestamp.body``. Signed timestamps more than 5 minutes off are refused as replays; Postmark signs nothing,
so there the event id (and every service's) is remembered and a repeat changes nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from newsletter.models import DeliveryRow
from subscribers import service
from subscribers.models import Subscriber, WebhookEvent

Kind = Literal["hard_bounce", "soft_bounce", "complaint", "unsubscribe", "delivered", "ignored"]
WINDOW = 300


class WebhookRejected(Exception):
    """The request failed authentication (answered 401; nothing changes)."""


@dataclass(frozen=True, slots=True)
class Event:
    """One provider event in our own terms."""

    provider: str
    event_id: str
    kind: Kind
    address: str | None
    delivery_id: int | None


def _fresh(timestamp: str, now: float) -> None:
    try:
        age = abs(now - float(timestamp))
    except ValueError:
        raise WebhookRejected("timestamp is not a number") from None
    if age > WINDOW:
        raise WebhookRejected("timestamp outside the 5-minute window (a replay?)")


def verify_postmark(headers: Mapping[str, str], body: bytes, *, username: str, password: str, now: float) -> None:
    """HTTP Basic credentials, compared in constant time."""
    expected = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
    if not hmac.compare_digest(headers.get("authorization", "").encode(), expected.encode()):
        raise WebhookRejected("bad credentials")


def verify_sendgrid(headers: Mapping[str, str], body: bytes, *, public_key: str, now: float) -> None:
    """ECDSA P-256 / SHA-256 signature of timestamp + raw body, with SendGrid's public key."""
    timestamp = headers.get("x-twilio-email-event-webhook-timestamp", "")
    signature = headers.get("x-twilio-email-event-webhook-signature", "")
    _fresh(timestamp, now)
    try:
        key = load_der_public_key(base64.b64decode(public_key))
        assert isinstance(key, ec.EllipticCurvePublicKey)
        key.verify(base64.b64decode(signature), timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError, binascii.Error) as exc:
        raise WebhookRejected("bad signature") from exc


def verify_mailgun(headers: Mapping[str, str], body: bytes, *, signing_key: str, now: float) -> None:
    """Hex HMAC-SHA256 of timestamp + token, carried inside the JSON body."""
    try:
        signature = json.loads(body)["signature"]
        timestamp, token, given = str(signature["timestamp"]), str(signature["token"]), str(signature["signature"])
    except (ValueError, KeyError, TypeError):
        raise WebhookRejected("no signature in the body") from None
    _fresh(timestamp, now)
    expected = hmac.new(signing_key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    if not (given.isascii() and hmac.compare_digest(expected, given)):  # compare_digest refuses non-ASCII str
        raise WebhookRejected("bad signature")


def verify_resend(headers: Mapping[str, str], body: bytes, *, secret: str, now: float) -> None:
    """Svix: base64 HMAC-SHA256 of ``id.timestamp.body`` with the base64 secret after ``whsec_``."""
    message_id, timestamp = headers.get("svix-id", ""), headers.get("svix-timestamp", "")
    _fresh(timestamp, now)
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"))
    except binascii.Error as exc:
        raise WebhookRejected("webhook secret is not base64") from exc
    expected = base64.b64encode(hmac.new(key, f"{message_id}.{timestamp}.".encode() + body,
                                         hashlib.sha256).digest()).decode()
    offered = [part.split(",", 1)[1] for part in headers.get("svix-signature", "").split() if part.startswith("v1,")]
    if not any(candidate.isascii() and hmac.compare_digest(expected, candidate) for candidate in offered):
        raise WebhookRejected("bad signature")


def parse_postmark(headers: Mapping[str, str], payload: Any) -> list[Event]:
    """One event per POST, by RecordType."""
    record = str(payload.get("RecordType", ""))
    address = payload.get("Email") or payload.get("Recipient")
    delivery = _int((payload.get("Metadata") or {}).get("delivery_id"))
    event_id = f"postmark:{record}:{payload.get('ID') or payload.get('MessageID')}:{payload.get('ChangedAt', '')}"
    kind: Kind = "ignored"
    if record == "Bounce":
        kind = "hard_bounce" if payload.get("Type") in ("HardBounce", "BadEmailAddress") or payload.get(
            "Inactive") else "soft_bounce"
    elif record == "SpamComplaint":
        kind = "complaint"
    elif record == "SubscriptionChange" and payload.get("SuppressSending"):
        kind = {"HardBounce": "hard_bounce", "SpamComplaint": "complaint"}.get(
            str(payload.get("SuppressionReason")), "unsubscribe")  # type: ignore[assignment]
    elif record == "Delivery":
        kind = "delivered"
    return [Event("postmark", event_id, kind, address, delivery)]


def parse_sendgrid(headers: Mapping[str, str], payload: Any) -> list[Event]:
    """A JSON array of events; our delivery id comes back as a custom arg."""
    kinds: dict[str, Kind] = {"spamreport": "complaint", "unsubscribe": "unsubscribe",
                              "group_unsubscribe": "unsubscribe", "delivered": "delivered"}
    events = []
    for item in payload if isinstance(payload, list) else []:
        name = str(item.get("event"))
        kind: Kind = kinds.get(name, "ignored")
        if name == "bounce":
            kind = "soft_bounce" if item.get("type") == "blocked" else "hard_bounce"
        events.append(Event("sendgrid", f"sendgrid:{item.get('sg_event_id')}", kind, item.get("email"),
                            _int(item.get("delivery_id"))))
    return events


def parse_mailgun(headers: Mapping[str, str], payload: Any) -> list[Event]:
    """``event-data`` with the event, its severity and our user variables."""
    data = payload.get("event-data") or {}
    name = str(data.get("event"))
    kinds: dict[str, Kind] = {"complained": "complaint", "unsubscribed": "unsubscribe", "delivered": "delivered"}
    kind: Kind = kinds.get(name, "ignored")
    if name == "failed":
        kind = "hard_bounce" if data.get("severity") == "permanent" else "soft_bounce"
    delivery = _int((data.get("user-variables") or {}).get("delivery_id"))
    return [Event("mailgun", f"mailgun:{data.get('id')}", kind, data.get("recipient"), delivery)]


def parse_resend(headers: Mapping[str, str], payload: Any) -> list[Event]:
    """Svix envelope ``{type, data}``; our delivery id is a tag."""
    name = str(payload.get("type"))
    data = payload.get("data") or {}
    kind: Kind = {"email.complained": "complaint", "email.delivered": "delivered"}.get(name, "ignored")  # type: ignore[assignment]
    if name == "email.bounced":
        kind = "hard_bounce" if (data.get("bounce") or {}).get("type") == "Permanent" else "soft_bounce"
    elif name == "email.suppressed":
        kind = "hard_bounce"
    to = data.get("to") or [None]
    tags = data.get("tags") or {}
    delivery = _int(tags.get("delivery_id") if isinstance(tags, dict) else None)
    return [Event("resend", f"resend:{headers.get('svix-id')}", kind, to[0], delivery)]


PARSERS: dict[str, Callable[[Mapping[str, str], Any], list[Event]]] = {
    "postmark": parse_postmark, "sendgrid": parse_sendgrid, "mailgun": parse_mailgun, "resend": parse_resend}


def apply(engine: Engine, events: list[Event], *, soft_limit: int, now: datetime | None = None) -> int:
    """Apply events not seen before; returns how many changed something."""
    moment = now or datetime.now(UTC)
    applied = 0
    for event in events:
        if event.kind == "ignored" or not _first_time(engine, event, moment):
            continue
        applied += _apply_one(engine, event, soft_limit)
    return applied


def _first_time(engine: Engine, event: Event, moment: datetime) -> bool:
    try:
        with Session(engine) as session:
            session.add(WebhookEvent(provider=event.provider, event_id=event.event_id[:300], received_at=moment))
            session.commit()
        return True
    except IntegrityError:
        return False


def _apply_one(engine: Engine, event: Event, soft_limit: int) -> int:
    with Session(engine) as session:
        delivery = session.get(DeliveryRow, event.delivery_id) if event.delivery_id else None
        row = session.get(Subscriber, delivery.subscriber_id) if delivery else None
        if row is None and event.address:
            row = session.exec(select(Subscriber).where(Subscriber.email == event.address.lower())).first()
        if row is None:
            return 0
        if event.kind == "unsubscribe":
            session.close()
            assert row.id is not None
            service.unsubscribe(engine, row.id, channel=event.provider)
            return 1
        if event.kind == "soft_bounce":
            row.soft_bounces += 1
            if row.soft_bounces >= soft_limit and row.status in ("active", "pending"):
                row.status = "bounced"
        elif event.kind in ("hard_bounce", "complaint") and row.status != "complained":
            row.status = "bounced" if event.kind == "hard_bounce" else "complained"
        if row.status in ("bounced", "complained") and row.unsubscribed_at is None:
            row.unsubscribed_at, row.unsubscribe_channel = datetime.now(UTC), event.provider
        if delivery is not None and event.kind in ("hard_bounce", "complaint"):
            delivery.status = "bounced" if event.kind == "hard_bounce" else "complained"
        session.commit()
        return 1


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def now_seconds() -> float:
    """The clock the verifiers compare timestamps with."""
    return time.time()
