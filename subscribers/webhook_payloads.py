"""What each service's webhook body says, checked field by field and mapped to our own events.

Every field we read has a declared type; a body that breaks one (``"email": 5``, events not a list, a
timestamp as a string, NUL or a lone surrogate in a string) is refused whole with a message naming the field,
before anything is stored. Fields we don't read may hold anything. An event without the service's own id gets
one derived from its content, so distinct events are all applied and an exact repeat is still ignored.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from newsletter.errors import WebhookPayloadError

# "accepted": the service took the message (sent, processed, opened, …) and that is all the event says; like
# every other kind naming our delivery id, it settles a delivery whose outcome was unknown.
Kind = Literal["hard_bounce", "soft_bounce", "complaint", "unsubscribe", "delivered", "accepted", "ignored"]
M = TypeVar("M", bound=BaseModel)
MAX_ID = 2**31 - 1  # ids beyond a 32-bit integer column are not ours; looking them up would overflow it


@dataclass(frozen=True, slots=True)
class Event:
    """One provider event in our own terms."""

    provider: str
    event_id: str
    kind: Kind
    address: str | None
    delivery_id: int | None


def _storable(value: str) -> str:
    # PostgreSQL refuses NUL in text, and a lone surrogate cannot be encoded: refuse both up front.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    value.encode("utf-8")  # UnicodeEncodeError is a ValueError: pydantic reports it against the field
    return value


Text = Annotated[str, AfterValidator(_storable)]
Ref = Text | int  # our delivery id comes back as a string (metadata, custom args) or a number


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow", frozen=True)


class PostmarkMetadata(_Strict):
    """The metadata we sent with a Postmark message: our delivery id."""

    delivery_id: Ref | None = None


class PostmarkRecord(_Strict):
    """One Postmark webhook record (bounce, spam complaint, subscription change, delivery)."""

    RecordType: Text = ""
    ID: Ref | None = None
    MessageID: Text | None = None
    ChangedAt: Text | None = None
    Type: Text | None = None
    Inactive: bool | None = None
    SuppressSending: bool | None = None
    SuppressionReason: Text | None = None
    Email: Text | None = None
    Recipient: Text | None = None
    Metadata: PostmarkMetadata | None = None


class SendGridEvent(_Strict):
    """One event of a SendGrid Event Webhook batch; ``delivery_id`` is our custom arg."""

    event: Text
    email: Text | None = None
    timestamp: int | None = None
    sg_event_id: Text | None = None
    sg_message_id: Text | None = None
    type: Text | None = None
    delivery_id: Ref | None = None


class MailgunVariables(_Strict):
    """The ``v:`` variables we sent with a Mailgun message: our delivery id."""

    delivery_id: Ref | None = None


class MailgunData(_Strict):
    """The ``event-data`` of a Mailgun webhook: the event, its id, severity, recipient and variables."""

    event: Text
    id: Text | None = None
    severity: Text | None = None
    recipient: Text | None = None
    timestamp: float | None = None
    user_variables: MailgunVariables | None = Field(default=None, alias="user-variables")


class MailgunBody(_Strict):
    """A Mailgun webhook body (the signature beside it is checked before this is parsed)."""

    event_data: MailgunData = Field(alias="event-data")


class ResendBounce(_Strict):
    """The bounce detail of a Resend event."""

    type: Text | None = None


class ResendData(_Strict):
    """The ``data`` of a Resend event: recipients, bounce detail, our tags."""

    to: list[Text] | None = None
    bounce: ResendBounce | None = None
    tags: dict[str, Ref | None] | list[Any] | None = None  # a name → value object; older payloads sent a list


class ResendBody(_Strict):
    """A Resend webhook body: the event type and its data."""

    type: Text
    data: ResendData | None = None


class SnsEnvelope(_Strict):
    """An Amazon SNS message as it arrives over HTTPS: a notification, or a (un)subscription confirmation."""

    Type: Text
    MessageId: Text
    TopicArn: Text
    Message: Text
    Timestamp: Text
    SignatureVersion: Text
    Signature: Text
    SigningCertURL: Text
    Subject: Text | None = None
    SubscribeURL: Text | None = None
    Token: Text | None = None


class SesMail(_Strict):
    """The ``mail`` of an SES event: its message id, and the tags we sent (with a configuration set)."""

    messageId: Text
    tags: dict[str, list[Text]] | None = None


class SesRecipient(_Strict):
    """One bounced or complaining recipient of an SES event."""

    emailAddress: Text


class SesBounce(_Strict):
    """The bounce of an SES event: Permanent, Transient or Undetermined, and whom it hit."""

    bounceType: Text
    bouncedRecipients: list[SesRecipient]
    feedbackId: Text | None = None


class SesComplaint(_Strict):
    """The complaint of an SES event and who complained."""

    complainedRecipients: list[SesRecipient]
    feedbackId: Text | None = None


class SesDelivery(_Strict):
    """The delivery of an SES event: the recipients the receiving server took it for."""

    recipients: list[Text] = []


class SesEvent(_Strict):
    """An SES event (``eventType``, with event publishing) or notification (``notificationType``) inside SNS."""

    eventType: Text | None = None
    notificationType: Text | None = None
    mail: SesMail
    bounce: SesBounce | None = None
    complaint: SesComplaint | None = None
    delivery: SesDelivery | None = None


def load_json(body: bytes) -> Any:
    """The body as JSON, or WebhookPayloadError (also for nesting too deep to parse)."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise WebhookPayloadError(f"the body is not valid JSON ({type(exc).__name__})") from None


def _checked(model: type[M], value: Any, *, within: str = "the body") -> M:
    try:
        return model.model_validate(value)
    except (ValidationError, RecursionError) as exc:
        raise WebhookPayloadError(_describe(exc, within)) from None


def _describe(exc: ValidationError | RecursionError, within: str) -> str:
    if isinstance(exc, RecursionError):
        return f"{within} is nested too deeply"
    error = exc.errors()[0]
    message = error["msg"].split(" or instance of ")[0]  # our model's class name means nothing to the sender
    where = ".".join(str(part) for part in error["loc"])
    return f"{within}, field {where}: {message}" if where else f"{within}: {message}"


def content_id(provider: str, value: Any) -> str:
    """A stable id for an event the service sent without one: the hash of its canonical JSON."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return f"{provider}:sha256:{hashlib.sha256(canonical.encode()).hexdigest()}"


def _event_id(provider: str, given: str | None, payload: Any) -> str:
    # Over-long ids are hashed, not truncated: two ids sharing a prefix must stay two events.
    if given is None:
        return content_id(provider, payload)
    full = f"{provider}:{given}"
    return full if len(full) <= 200 else f"{provider}:sha256:{hashlib.sha256(full.encode()).hexdigest()}"


def parse_postmark(headers: Mapping[str, str], payload: Any) -> list[Event]:
    """One event per POST, by RecordType."""
    record = _checked(PostmarkRecord, payload)
    kind: Kind = "ignored"
    if record.RecordType == "Bounce":
        hard = record.Type in ("HardBounce", "BadEmailAddress") or record.Inactive
        kind = "hard_bounce" if hard else "soft_bounce"
    elif record.RecordType == "SpamComplaint":
        kind = "complaint"
    elif record.RecordType == "SubscriptionChange" and record.SuppressSending:
        kind = {"HardBounce": "hard_bounce", "SpamComplaint": "complaint"}.get(
            str(record.SuppressionReason), "unsubscribe")  # type: ignore[assignment]
    elif record.RecordType == "Delivery":
        kind = "delivered"
    elif record.RecordType in ("Open", "Click"):  # Postmark sends no "sent" event; these prove it took the message
        kind = "accepted"
    ref = record.ID if record.ID is not None else record.MessageID
    given = None if ref is None else f"{record.RecordType}:{ref}:{record.ChangedAt or ''}"
    delivery = _int(record.Metadata.delivery_id if record.Metadata else None)
    return [Event("postmark", _event_id("postmark", given, payload), kind, record.Email or record.Recipient,
                  delivery)]


def parse_sendgrid(headers: Mapping[str, str], payload: Any) -> list[Event]:
    """A JSON array of events; our delivery id comes back as a custom arg."""
    if not isinstance(payload, list):
        raise WebhookPayloadError("the body must be a JSON array of events")
    kinds: dict[str, Kind] = {"spamreport": "complaint", "unsubscribe": "unsubscribe",
                              "group_unsubscribe": "unsubscribe", "delivered": "delivered",
                              "processed": "accepted", "deferred": "accepted", "open": "accepted",
                              "click": "accepted"}
    items = [_checked(SendGridEvent, item, within=f"event {n}") for n, item in enumerate(payload)]
    events = []
    for raw, item in zip(payload, items, strict=True):
        kind: Kind = kinds.get(item.event, "ignored")
        if item.event == "bounce":
            kind = "soft_bounce" if item.type == "blocked" else "hard_bounce"
        events.append(Event("sendgrid", _event_id("sendgrid", item.sg_event_id, raw), kind, item.email,
                            _int(item.delivery_id)))
    return events


def parse_mailgun(headers: Mapping[str, str], payload: Any) -> list[Event]:
    """``event-data`` with the event, its severity and our user variables."""
    data = _checked(MailgunBody, payload).event_data
    kinds: dict[str, Kind] = {"complained": "complaint", "unsubscribed": "unsubscribe", "delivered": "delivered",
                              "accepted": "accepted", "opened": "accepted", "clicked": "accepted"}
    kind: Kind = kinds.get(data.event, "ignored")
    if data.event == "failed":
        kind = "hard_bounce" if data.severity == "permanent" else "soft_bounce"
    delivery = _int(data.user_variables.delivery_id if data.user_variables else None)
    event_id = _event_id("mailgun", data.id, payload["event-data"])
    return [Event("mailgun", event_id, kind, data.recipient, delivery)]


def parse_resend(headers: Mapping[str, str], payload: Any) -> list[Event]:
    """Svix envelope ``{type, data}``; our delivery id is a tag; ``svix-id`` stays the same across retries."""
    body = _checked(ResendBody, payload)
    data = body.data or ResendData()
    kind: Kind = {"email.complained": "complaint", "email.delivered": "delivered", "email.sent": "accepted",  # type: ignore[assignment]
                  "email.delivery_delayed": "accepted", "email.opened": "accepted",
                  "email.clicked": "accepted"}.get(body.type, "ignored")
    if body.type == "email.bounced":
        kind = "hard_bounce" if data.bounce and data.bounce.type == "Permanent" else "soft_bounce"
    elif body.type == "email.suppressed":
        kind = "hard_bounce"
    tags = data.tags if isinstance(data.tags, dict) else {}
    address = data.to[0] if data.to else None
    return [Event("resend", _event_id("resend", headers.get("svix-id"), payload), kind, address,
                  _int(tags.get("delivery_id")))]


def parse_ses(headers: Mapping[str, str], payload: Any) -> list[Event]:
    """An SNS envelope (already verified) whose Message is an SES event: one event per recipient it names.

    Confirmations carry no event. Ids come from SES itself (the feedback id of a bounce or complaint, else the
    mail's message id) with the recipient, so SNS's retries and the same event published twice apply once.
    """
    envelope = _checked(SnsEnvelope, payload)
    if envelope.Type != "Notification":
        return []
    event = _checked(SesEvent, load_json(envelope.Message.encode("utf-8")), within="the SNS Message")
    name = event.eventType or event.notificationType or ""
    kind: Kind = {"Complaint": "complaint", "Delivery": "delivered"}.get(name, "ignored")  # type: ignore[assignment]
    addresses: list[str] = []
    feedback = None
    if name == "Bounce" and event.bounce:
        kind = "hard_bounce" if event.bounce.bounceType == "Permanent" else "soft_bounce"
        addresses, feedback = [r.emailAddress for r in event.bounce.bouncedRecipients], event.bounce.feedbackId
    elif name == "Complaint" and event.complaint:
        addresses = [r.emailAddress for r in event.complaint.complainedRecipients]
        feedback = event.complaint.feedbackId
    elif name == "Delivery" and event.delivery:
        addresses = event.delivery.recipients
    tagged = (event.mail.tags or {}).get("delivery_id") or []
    delivery = _int(tagged[0] if tagged else None)
    source = feedback or event.mail.messageId
    if not addresses:  # a Send event names no recipient, but our tag says which delivery SES took
        return [Event("ses", _event_id("ses", f"{name}:{source}", None), "accepted" if name == "Send" else "ignored",
                      None, delivery)]
    return [Event("ses", _event_id("ses", f"{name}:{source}:{address.lower()}", None), kind, address, delivery)
            for address in addresses]


PARSERS: dict[str, Callable[[Mapping[str, str], Any], list[Event]]] = {
    "postmark": parse_postmark, "sendgrid": parse_sendgrid, "mailgun": parse_mailgun, "resend": parse_resend,
    "ses": parse_ses}


def _int(value: str | int | None) -> int | None:
    try:
        number = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if 0 < number <= MAX_ID else None
