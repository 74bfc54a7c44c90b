"""Webhooks from all four services, signed as each signs them, against the real app on both databases."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from newsletter.config import Settings
from newsletter.models import DeliveryRow
from subscribers.models import Subscriber, WebhookEvent, WebhookToken
from tests.newsletter.test_issues import build, seed
from tests.newsletter.web.helpers import running

SENDGRID_KEY = ec.generate_private_key(ec.SECP256R1())
SENDGRID_PUBLIC = base64.b64encode(SENDGRID_KEY.public_key().public_bytes(
    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
MAILGUN_KEY = "mailgun-signing-key"
RESEND_SECRET = "whsec_" + base64.b64encode(b"resend-webhook-secret-bytes").decode()


@pytest.fixture
def app(engine: Engine, database_url: str, make_settings: Callable[..., Settings]) -> Iterator[TestClient]:
    seed(engine)
    with running(make_settings, database_url, postmark_webhook_username="pm", postmark_webhook_password="pw",
                 sendgrid_webhook_public_key=SENDGRID_PUBLIC, mailgun_webhook_signing_key=MAILGUN_KEY,
                 resend_webhook_secret=RESEND_SECRET, soft_bounce_limit=2) as (client, _):
        yield client


def status(engine: Engine, address: str) -> str:
    with Session(engine) as session:
        return session.exec(select(Subscriber).where(Subscriber.email == address)).one().status


def postmark(client: TestClient, payload: dict[str, Any], password: str = "pw") -> Any:
    auth = "Basic " + base64.b64encode(f"pm:{password}".encode()).decode()
    return client.post("/webhooks/postmark", content=json.dumps(payload), headers={"Authorization": auth})


def sendgrid(client: TestClient, events: list[dict[str, Any]], *, age: float = 0, tamper: bool = False) -> Any:
    body = json.dumps(events).encode()
    timestamp = str(int(time.time() - age))
    signature = base64.b64encode(SENDGRID_KEY.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()
    return client.post("/webhooks/sendgrid", content=body + (b" " if tamper else b""), headers={
        "X-Twilio-Email-Event-Webhook-Signature": signature, "X-Twilio-Email-Event-Webhook-Timestamp": timestamp})


def mailgun_signature(*, key: str = MAILGUN_KEY, age: float = 0) -> dict[str, str]:
    """A fresh signature block with a new token, as Mailgun makes one per request."""
    timestamp, token = str(int(time.time() - age)), secrets.token_hex(25)
    signature = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    return {"timestamp": timestamp, "token": token, "signature": signature}


def mailgun(client: TestClient, data: Any, *, key: str = MAILGUN_KEY, age: float = 0,
            signature: dict[str, str] | None = None) -> Any:
    body = {"signature": signature or mailgun_signature(key=key, age=age), "event-data": data}
    return client.post("/webhooks/mailgun", json=body)


def resend(client: TestClient, payload: dict[str, Any], *, msg_id: str = "msg_1", age: float = 0) -> Any:
    body = json.dumps(payload).encode()
    timestamp = str(int(time.time() - age))
    key = base64.b64decode(RESEND_SECRET.removeprefix("whsec_"))
    signature = base64.b64encode(hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest())
    return client.post("/webhooks/resend", content=body, headers={
        "svix-id": msg_id, "svix-timestamp": timestamp, "svix-signature": f"v1,bogus v1,{signature.decode()}"})


def test_postmark_basic_auth_and_bounces(app: TestClient, engine: Engine) -> None:
    hard = {"RecordType": "Bounce", "ID": 1, "Type": "HardBounce", "Email": "all1@example.com", "MessageID": "m1"}
    assert postmark(app, hard, password="wrong").status_code == 401
    assert status(engine, "all1@example.com") == "active"
    answer = postmark(app, hard)
    assert answer.status_code == 200 and answer.json() == {"received": 1, "applied": 1}
    assert status(engine, "all1@example.com") == "bounced"
    assert postmark(app, hard).json()["applied"] == 0  # the same event again changes nothing
    complaint = {"RecordType": "SpamComplaint", "ID": 2, "Email": "all2@example.com", "MessageID": "m2"}
    postmark(app, complaint)
    assert status(engine, "all2@example.com") == "complained"
    assert postmark(app, {"RecordType": "Open", "MessageID": "m3"}).json() == {"received": 1, "applied": 0}


def test_sendgrid_ecdsa_and_replay_window(app: TestClient, engine: Engine) -> None:
    events = [{"event": "bounce", "type": "bounce", "email": "all3@example.com", "sg_event_id": "e1"},
              {"event": "spamreport", "email": "all4@example.com", "sg_event_id": "e2"},
              {"event": "processed", "email": "all0@example.com", "sg_event_id": "e3"}]
    assert sendgrid(app, events, tamper=True).status_code == 401
    assert sendgrid(app, events, age=600).status_code == 401  # outside the 5-minute window
    assert status(engine, "all3@example.com") == "active"
    assert sendgrid(app, events).json() == {"received": 3, "applied": 2}
    assert (status(engine, "all3@example.com"), status(engine, "all4@example.com")) == ("bounced", "complained")


def test_mailgun_hmac_and_soft_bounce_threshold(app: TestClient, engine: Engine) -> None:
    def soft(n: int) -> dict[str, Any]:
        return {"event": "failed", "severity": "temporary", "id": f"soft{n}", "recipient": "design0@example.com"}

    assert mailgun(app, soft(0), key="wrong").status_code == 401
    assert mailgun(app, soft(0), age=3600).status_code == 401
    assert mailgun(app, soft(1)).status_code == 200
    assert status(engine, "design0@example.com") == "active"  # one soft bounce is not enough
    mailgun(app, soft(2))
    assert status(engine, "design0@example.com") == "bounced"  # the limit is 2 here
    mailgun(app, {"event": "unsubscribed", "id": "u1", "recipient": "design1@example.com"})
    assert status(engine, "design1@example.com") == "unsubscribed"


def test_resend_svix_and_delivery_marked(app: TestClient, engine: Engine) -> None:
    from subscribers.store import Links, SubscriberRecipients
    from subscribers.tokens import Signer

    build(engine, SubscriberRecipients(engine, Links(Signer("x" * 20), "https://a.example", "u@a.example")))
    with Session(engine) as session:
        target = session.exec(select(Subscriber).where(Subscriber.email == "free@example.com")).one()
        delivery = session.exec(select(DeliveryRow).where(DeliveryRow.subscriber_id == target.id)).one()
    bounce = {"type": "email.bounced", "data": {"to": ["someone-else@example.com"], "bounce": {"type": "Permanent"},
                                                "tags": {"delivery_id": str(delivery.id)}}}
    assert resend(app, bounce, age=400).status_code == 401
    assert resend(app, bounce).json()["applied"] == 1
    assert status(engine, "free@example.com") == "bounced"  # found by our delivery id, not the address
    with Session(engine) as session:
        assert session.get(DeliveryRow, delivery.id).status == "bounced"  # type: ignore[union-attr]
    assert resend(app, bounce).json()["applied"] == 0  # svix-id seen before
    assert resend(app, {"type": "email.opened", "data": {}}, msg_id="msg_2").json()["applied"] == 0


def test_unconfigured_and_malformed(app: TestClient, engine: Engine, database_url: str,
                                    make_settings: Callable[..., Settings]) -> None:
    with running(make_settings, database_url) as (bare, _):
        assert bare.post("/webhooks/postmark", content=b"{}").status_code == 404
    auth = "Basic " + base64.b64encode(b"pm:pw").decode()
    assert app.post("/webhooks/postmark", content=b"not json", headers={"Authorization": auth}).status_code == 400


def snapshot(engine: Engine) -> tuple[list[Any], ...]:
    """Everything a webhook may change: subscribers, deliveries, remembered event ids and Mailgun tokens."""
    with Session(engine) as session:
        return ([tuple(r) for r in session.exec(select(Subscriber.id, Subscriber.status, Subscriber.soft_bounces,
                                                       Subscriber.unsubscribed_at).order_by(Subscriber.id))],
                [tuple(r) for r in session.exec(select(DeliveryRow.id, DeliveryRow.status).order_by(DeliveryRow.id))],
                sorted(session.exec(select(WebhookEvent.event_id)).all()),
                sorted(session.exec(select(WebhookToken.digest)).all()))


def signed(service: str, body: bytes, *, msg_id: str = "msg_1", timestamp: str | None = None) -> dict[str, str]:
    """The headers with which ``service`` would authenticate ``body`` (Mailgun signs inside the body instead)."""
    timestamp = timestamp or str(int(time.time()))
    if service == "postmark":
        return {"Authorization": "Basic " + base64.b64encode(b"pm:pw").decode()}
    if service == "sendgrid":
        signature = SENDGRID_KEY.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {"X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
                "X-Twilio-Email-Event-Webhook-Timestamp": timestamp}
    if service == "resend":
        key = base64.b64decode(RESEND_SECRET.removeprefix("whsec_"))
        signature = base64.b64encode(hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest())
        return {"svix-id": msg_id, "svix-timestamp": timestamp, "svix-signature": f"v1,{signature.decode()}"}
    return {}


def request_for(service: str, payload: Any, *, msg_id: str = "msg_1") -> tuple[bytes, dict[str, str]]:
    """A body and headers that authenticate ``payload`` as ``service`` sends it (Mailgun: as event-data)."""
    if service == "mailgun":
        return json.dumps({"signature": mailgun_signature(), "event-data": payload}).encode(), {}
    body = json.dumps(payload).encode()
    return body, signed(service, body, msg_id=msg_id)


HARD_BOUNCES: dict[str, Callable[[str], Any]] = {
    "postmark": lambda to: {"RecordType": "Bounce", "ID": 71, "Type": "HardBounce", "Email": to},
    "sendgrid": lambda to: [{"event": "bounce", "type": "bounce", "email": to, "sg_event_id": "b71"}],
    "mailgun": lambda to: {"event": "failed", "severity": "permanent", "id": "b71", "recipient": to},
    "resend": lambda to: {"type": "email.bounced", "data": {"to": [to], "bounce": {"type": "Permanent"}}},
}


@contextmanager
def refusing_bounces(engine: Engine) -> Iterator[None]:
    """A real trigger that makes the database refuse to mark any subscriber bounced, until the block ends."""
    if engine.dialect.name == "sqlite":
        create = ["CREATE TRIGGER refuse_bounce BEFORE UPDATE OF status ON subscriber WHEN NEW.status = 'bounced' "
                  "BEGIN SELECT RAISE(ABORT, 'bounces refused for the test'); END"]
        drop = ["DROP TRIGGER refuse_bounce"]
    else:
        create = ["CREATE FUNCTION refuse_bounce() RETURNS trigger LANGUAGE plpgsql AS "
                  "$$ BEGIN RAISE EXCEPTION 'bounces refused for the test'; END $$",
                  "CREATE TRIGGER refuse_bounce BEFORE UPDATE OF status ON subscriber FOR EACH ROW "
                  "WHEN (NEW.status = 'bounced') EXECUTE FUNCTION refuse_bounce()"]
        drop = ["DROP TRIGGER refuse_bounce ON subscriber", "DROP FUNCTION refuse_bounce()"]
    with engine.begin() as connection:
        for statement in create:
            connection.execute(text(statement))
    try:
        yield
    finally:
        with engine.begin() as connection:
            for statement in drop:
                connection.execute(text(statement))


@pytest.mark.parametrize("service", sorted(HARD_BOUNCES))
def test_an_event_that_failed_to_apply_is_applied_on_the_retry(app: TestClient, engine: Engine, service: str) -> None:
    body, headers = request_for(service, HARD_BOUNCES[service]("all1@example.com"))
    before = snapshot(engine)
    with refusing_bounces(engine):
        failed = app.post(f"/webhooks/{service}", content=body, headers=headers)
    assert failed.status_code == 503 and "retry" in failed.json()["error"]
    assert snapshot(engine) == before  # neither the event id nor a Mailgun token was kept
    retry = app.post(f"/webhooks/{service}", content=body, headers=headers)  # byte-identical, as services retry
    assert retry.json() == {"received": 1, "applied": 1}
    assert status(engine, "all1@example.com") == "bounced"
    assert app.post(f"/webhooks/{service}", content=body, headers=headers).json()["applied"] == 0


def test_sendgrid_events_without_an_id_are_each_applied_once(app: TestClient, engine: Engine) -> None:
    events = [{"event": "bounce", "type": "bounce", "email": "all3@example.com", "timestamp": 1764800000,
               "sg_message_id": "m.1"},
              {"event": "spamreport", "email": "all4@example.com", "timestamp": 1764800000, "sg_message_id": "m.2"}]
    assert sendgrid(app, events).json() == {"received": 2, "applied": 2}
    assert (status(engine, "all3@example.com"), status(engine, "all4@example.com")) == ("bounced", "complained")
    assert sendgrid(app, events).json() == {"received": 2, "applied": 0}  # an exact repeat is still ignored
    soft = {"event": "bounce", "type": "blocked", "email": "all2@example.com", "timestamp": 1764800000}
    assert sendgrid(app, [soft, soft | {"timestamp": 1764800060}]).json()["applied"] == 2
    assert status(engine, "all2@example.com") == "bounced"  # two distinct soft bounces reach the limit of 2


def deep(levels: int = 100_000) -> bytes:
    return b"[" * levels + b"]" * levels


BAD_BODIES: list[tuple[str, Any, str]] = [
    ("postmark", deep(), "JSON"),
    ("sendgrid", deep(), "JSON"),
    ("resend", deep(), "JSON"),
    ("mailgun", deep(), "JSON"),
    ("mailgun", b'{"signature": %s, "event-data": %s}', "JSON"),  # signed, with the nesting inside
    ("postmark", {"RecordType": "Bounce", "ID": 1, "Type": "HardBounce", "Email": ["all1@example.com"]}, "Email"),
    ("postmark", {"RecordType": "Bounce", "ID": 1, "Type": "HardBounce", "Email": "all1@example.com\u0000"}, "NUL"),
    ("postmark", b'{"RecordType": "Bounce", "ID": 1, "Type": "HardBounce", "Email": "\\ud800"}', "Email"),
    ("postmark", "a string", "dictionary"),
    ("sendgrid", [{"event": "bounce", "email": 5}], "email"),
    ("sendgrid", {"event": "bounce", "email": "all3@example.com"}, "array"),
    ("sendgrid", [{"event": "bounce", "email": "all3@example.com", "timestamp": "1764800000"}], "timestamp"),
    ("sendgrid", [{"event": "bounce", "email": "all3@example.com"}, "not an event"], "event 1"),
    ("sendgrid", b"\xff\xfe not utf-8", "JSON"),
    ("mailgun", {"event": "failed", "severity": "permanent", "recipient": 5}, "recipient"),
    ("mailgun", {"event": "failed", "recipient": "all1@example.com", "timestamp": "1529701969.8"}, "timestamp"),
    ("mailgun", ["failed"], "event-data"),
    ("resend", {"type": "email.bounced", "data": {"to": "all1@example.com"}}, "to"),
    ("resend", {"type": "email.bounced", "data": {"to": [None], "bounce": {"type": "Permanent"}}}, "to"),
    ("resend", {"type": 7}, "type"),
]


@pytest.mark.parametrize(("service", "payload", "named"), BAD_BODIES,
                         ids=[f"{s}-{i}" for i, (s, _, _) in enumerate(BAD_BODIES)])
def test_signed_bad_bodies_get_400_and_change_nothing(app: TestClient, engine: Engine, service: str, payload: Any,
                                                      named: str) -> None:
    if payload == BAD_BODIES[4][1]:
        body = payload % (json.dumps(mailgun_signature()).encode(), deep())
        headers: dict[str, str] = {}
    elif isinstance(payload, bytes):
        body, headers = payload, signed(service, payload)
    else:
        body, headers = request_for(service, payload)
    before = snapshot(engine)
    answer = app.post(f"/webhooks/{service}", content=body, headers=headers)
    assert answer.status_code == 400, answer.text
    assert named in answer.json()["error"]
    assert snapshot(engine) == before


def test_ids_that_are_not_ours_are_ignored_not_a_server_error(app: TestClient, engine: Engine) -> None:
    bounce = {"type": "email.bounced", "data": {"to": ["all1@example.com"], "bounce": {"type": "Permanent"},
                                                "tags": {"delivery_id": "9" * 30}}}
    assert resend(app, bounce).json() == {"received": 1, "applied": 1}  # found by the address instead
    assert status(engine, "all1@example.com") == "bounced"


def test_a_nan_timestamp_is_not_fresh(app: TestClient, engine: Engine) -> None:
    body = json.dumps([{"event": "spamreport", "email": "all4@example.com", "sg_event_id": "n1"}]).encode()
    answer = app.post("/webhooks/sendgrid", content=body, headers=signed("sendgrid", body, timestamp="nan"))
    assert answer.status_code == 401
    assert status(engine, "all4@example.com") == "active"


def test_a_captured_mailgun_signature_cannot_carry_another_event(app: TestClient, engine: Engine) -> None:
    captured = mailgun_signature()
    delivered = {"event": "delivered", "id": "d1", "recipient": "design0@example.com"}
    assert mailgun(app, delivered, signature=captured).status_code == 200
    before = snapshot(engine)
    forged = mailgun(app, {"event": "complained", "id": "c1", "recipient": "design1@example.com"}, signature=captured)
    assert forged.status_code == 401 and "already used" in forged.json()["error"]
    assert snapshot(engine) == before and status(engine, "design1@example.com") == "active"
    retry = mailgun(app, delivered, signature=captured)  # Mailgun's own retry of the same body is answered
    assert retry.json() == {"received": 1, "applied": 0}
