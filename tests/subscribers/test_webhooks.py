"""Webhooks from all four services, signed as each signs them, against the real app on both databases."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from newsletter.config import Settings
from newsletter.models import DeliveryRow
from subscribers.models import Subscriber
from tests.newsletter.test_issues import build, seed
from tests.subscribers.helpers import running

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


def mailgun(client: TestClient, data: dict[str, Any], *, key: str = MAILGUN_KEY, age: float = 0) -> Any:
    timestamp, token = str(int(time.time() - age)), "t" * 50
    signature = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    body = {"signature": {"timestamp": timestamp, "token": token, "signature": signature}, "event-data": data}
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
    from subscribers.store import Directory, Links
    from subscribers.tokens import Signer

    build(engine, Directory(engine, Links(Signer("x" * 20), "https://a.example", "u@a.example")))
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
