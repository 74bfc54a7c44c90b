"""SES events through SNS: signed by a test certificate the test trusts through the fetch transport, on both databases."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from newsletter.config import Settings
from newsletter.models import DeliveryRow
from newsletter.providers.memory import MemoryProvider
from newsletter.web.app import create_app
from subscribers.models import Subscriber
from tests.conftest import TEST_SECRET_KEY as SECRET
from tests.newsletter.test_issues import build, seed

TOPIC = "arn:aws:sns:eu-west-1:123456789012:ses-events"
CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0000test.pem"
SUBSCRIBE = f"https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=tok"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def certificate(key: rsa.RSAPrivateKey = KEY, *, days: int = 1) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=days)).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass
class Aws:
    """What the SNS hosts serve (certificates by URL) and every fetch the app made."""

    certificates: dict[str, bytes] = field(default_factory=lambda: {CERT_URL: certificate()})
    fetched: list[str] = field(default_factory=list)

    def transport(self) -> httpx.MockTransport:
        def answer(request: httpx.Request) -> httpx.Response:
            url = str(request.url)
            self.fetched.append(url)
            if url in self.certificates:
                return httpx.Response(200, content=self.certificates[url])
            if "Action=ConfirmSubscription" in url:
                return httpx.Response(200, text="<ConfirmSubscriptionResponse/>")
            return httpx.Response(404)
        return httpx.MockTransport(answer)


def canonical(message: dict[str, Any]) -> bytes:
    names = (["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"] if message["Type"] == "Notification"
             else ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"])
    return "".join(f"{n}\n{message[n]}\n" for n in names if n in message).encode()


def signed(message: dict[str, Any], *, version: str = "2", key: rsa.RSAPrivateKey = KEY) -> dict[str, Any]:
    digest = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = key.sign(canonical(message), padding.PKCS1v15(), digest)
    return message | {"SignatureVersion": version, "Signature": base64.b64encode(signature).decode()}


def envelope(kind: str, *, age: float = 0, **fields: Any) -> dict[str, Any]:
    stamp = (datetime.now(UTC) - timedelta(seconds=age)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {"Type": kind, "MessageId": str(uuid.uuid4()), "TopicArn": TOPIC, "Timestamp": stamp,
            "SigningCertURL": CERT_URL, **fields}


def notification(event: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return envelope("Notification", Message=json.dumps(event), **fields)


def ses_event(kind: str, address: str, *, delivery_id: int | None = None, bounce_type: str = "Permanent",
              feedback: str | None = None) -> dict[str, Any]:
    mail: dict[str, Any] = {"messageId": f"ses-{uuid.uuid4()}", "destination": [address], "source": "v@news.example"}
    if delivery_id is not None:
        mail["tags"] = {"delivery_id": [str(delivery_id)], "ses:configuration-set": ["newsletter"]}
    event: dict[str, Any] = {"eventType": kind, "mail": mail}
    feedback = feedback or str(uuid.uuid4())
    if kind == "Bounce":
        event["bounce"] = {"bounceType": bounce_type, "bounceSubType": "General", "feedbackId": feedback,
                           "bouncedRecipients": [{"emailAddress": address, "status": "5.1.1"}]}
    elif kind == "Complaint":
        event["complaint"] = {"complainedRecipients": [{"emailAddress": address}], "feedbackId": feedback}
    elif kind == "Delivery":
        event["delivery"] = {"recipients": [address], "smtpResponse": "250 ok"}
    return event


@pytest.fixture
def aws() -> Aws:
    return Aws()


@pytest.fixture
def client(engine: Engine, database_url: str, make_settings: Callable[..., Settings], aws: Aws) -> Iterator[TestClient]:
    seed(engine)
    settings = make_settings(database_url=database_url, secret_key=SECRET, ses_sns_topic_arns=TOPIC,
                             soft_bounce_limit=2)
    app = create_app(settings, provider=MemoryProvider(), sns_transport=aws.transport())
    with TestClient(app, base_url="https://testserver") as running:
        yield running


def post(client: TestClient, message: dict[str, Any], *, topic: str = TOPIC, raw: bytes | None = None) -> Any:
    headers = {"x-amz-sns-message-type": message.get("Type", ""), "x-amz-sns-topic-arn": topic,
               "x-amz-sns-message-id": message.get("MessageId", ""), "Content-Type": "text/plain; charset=UTF-8"}
    return client.post("/webhooks/ses", content=raw or json.dumps(message).encode(), headers=headers)


def status(engine: Engine, address: str) -> str:
    with Session(engine) as session:
        return session.exec(select(Subscriber).where(Subscriber.email == address)).one().status


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_permanent_bounce_suppresses_once_and_a_replay_changes_nothing(client: TestClient, engine: Engine,
                                                                        version: str) -> None:
    message = signed(notification(ses_event("Bounce", "all1@example.com")), version=version)
    answer = post(client, message)
    assert answer.status_code == 200 and answer.json() == {"received": 1, "applied": 1}
    assert status(engine, "all1@example.com") == "bounced"
    assert post(client, message).json() == {"received": 1, "applied": 0}  # SNS's retry, or a replay
    # The same SES event in a new SNS message (published twice) is still one event.
    again = json.loads(message["Message"])
    assert post(client, signed(notification(again), version=version)).json()["applied"] == 0


def test_our_delivery_id_from_the_tags_finds_the_reader_and_marks_the_delivery(client: TestClient,
                                                                              engine: Engine) -> None:
    from subscribers.store import Links, SubscriberRecipients
    from subscribers.tokens import Signer

    build(engine, SubscriberRecipients(engine, Links(Signer("x" * 20), "https://a.example", "u@a.example")))
    with Session(engine) as session:
        target = session.exec(select(Subscriber).where(Subscriber.email == "free@example.com")).one()
        delivery = session.exec(select(DeliveryRow).where(DeliveryRow.subscriber_id == target.id)).one()
    complaint = ses_event("Complaint", "forwarded@elsewhere.example", delivery_id=delivery.id)
    assert post(client, signed(notification(complaint))).json()["applied"] == 1
    assert status(engine, "free@example.com") == "complained"
    with Session(engine) as session:
        assert session.get(DeliveryRow, delivery.id).status == "complained"  # type: ignore[union-attr]


def test_transient_bounces_count_as_soft_and_deliveries_change_nothing(client: TestClient, engine: Engine) -> None:
    soft = [signed(notification(ses_event("Bounce", "design0@example.com", bounce_type="Transient")))
            for _ in range(2)]
    assert post(client, soft[0]).json()["applied"] == 1
    assert status(engine, "design0@example.com") == "active"  # one soft bounce is not enough
    post(client, soft[1])
    assert status(engine, "design0@example.com") == "bounced"  # the limit is 2 here
    assert post(client, signed(notification(ses_event("Delivery", "all2@example.com")))).status_code == 200
    assert status(engine, "all2@example.com") == "active"
    opened = {"eventType": "Open", "mail": {"messageId": "m-open"}, "open": {}}
    assert post(client, signed(notification(opened))).json() == {"received": 1, "applied": 0}


def test_tampered_or_foreign_messages_are_refused_and_change_nothing(client: TestClient, engine: Engine,
                                                                   aws: Aws) -> None:
    good = signed(notification(ses_event("Bounce", "all3@example.com")))
    tampered = good | {"Message": good["Message"].replace("all3", "all4")}
    assert post(client, tampered).status_code == 401
    assert post(client, signed(notification(ses_event("Bounce", "all3@example.com"), age=7200))).status_code == 401
    stranger = "arn:aws:sns:eu-west-1:999999999999:not-ours"
    assert post(client, signed(envelope("Notification", Message="{}") | {"TopicArn": stranger}),
                topic=stranger).status_code == 401
    assert post(client, good, topic=stranger).status_code == 401  # header and body must name the same topic
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert post(client, signed(notification(ses_event("Bounce", "all3@example.com")), key=other_key)).status_code == 401
    assert post(client, good | {"SignatureVersion": "3"}).status_code == 401
    assert post(client, good, raw=b"not json").status_code == 401
    assert (status(engine, "all3@example.com"), status(engine, "all4@example.com")) == ("active", "active")


@pytest.mark.parametrize("url", [
    "http://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0000test.pem",    # not https
    "https://sns.eu-west-1.amazonaws.com.evil.example/SimpleNotificationService.pem",
    "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000test.pem",   # another region than the topic
    "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0000test.txt",   # not .pem
    "https://user@sns.eu-west-1.amazonaws.com/SimpleNotificationService-0000test.pem",
    "https://sns.eu-west-1.amazonaws.com:8443/SimpleNotificationService-0000test.pem",
])
def test_a_certificate_from_anywhere_but_the_topics_sns_host_is_never_fetched(client: TestClient, aws: Aws,
                                                                             url: str) -> None:
    aws.certificates[url] = certificate()  # even when that host would serve a key that matches
    message = signed(notification(ses_event("Bounce", "all1@example.com"), SigningCertURL=url))
    assert post(client, message).status_code == 401
    assert aws.fetched == []


def test_the_certificate_is_fetched_once_and_an_expired_one_is_refused(client: TestClient, aws: Aws) -> None:
    for address in ("all1@example.com", "all2@example.com"):
        assert post(client, signed(notification(ses_event("Bounce", address)))).status_code == 200
    assert aws.fetched == [CERT_URL]
    expired_url = CERT_URL.replace("0000test", "expired")
    aws.certificates[expired_url] = certificate(days=-1)
    message = signed(notification(ses_event("Bounce", "all3@example.com"), SigningCertURL=expired_url))
    assert post(client, message).status_code == 401


def test_a_subscription_is_confirmed_only_on_the_topics_https_sns_host(client: TestClient, aws: Aws) -> None:
    def confirmation(url: str) -> dict[str, Any]:
        return signed(envelope("SubscriptionConfirmation", Message="You have chosen to subscribe…", Token="tok",
                               SubscribeURL=url))

    for bad in (SUBSCRIBE.replace("https:", "http:"), SUBSCRIBE.replace("sns.eu-west-1", "sns.us-east-1"),
                "https://evil.example/?Action=ConfirmSubscription&Token=tok"):
        assert post(client, confirmation(bad)).status_code == 401
    assert [url for url in aws.fetched if "ConfirmSubscription" in url] == []
    answer = post(client, confirmation(SUBSCRIBE))
    assert answer.status_code == 200 and answer.json() == {"received": 0, "applied": 0}
    assert [url for url in aws.fetched if "ConfirmSubscription" in url] == [SUBSCRIBE]
    tampered = confirmation(SUBSCRIBE) | {"Token": "other"}
    assert post(client, tampered).status_code == 401


def test_without_topics_the_ses_webhook_is_off(engine: Engine, database_url: str,
                                               make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(database_url=database_url, secret_key=SECRET)
    with TestClient(create_app(settings, provider=MemoryProvider()), base_url="https://testserver") as running:
        message = signed(notification(ses_event("Bounce", "all1@example.com")))
        assert post(running, message).status_code == 404


SES_WORDS = st.sampled_from(["Bounce", "Complaint", "Delivery", "Permanent", "Transient", "all0@example.com",
                             "delivery_id", "mail", "bounce", "bouncedRecipients", "emailAddress", "messageId",
                             "eventType", "notificationType", "tags", "1", "2147483648"])
SES_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8) | SES_WORDS,
                        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(SES_WORDS, inner, max_size=5),
                        max_leaves=14)


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(message=SES_JSON | st.text(max_size=20))
def test_any_signed_message_gets_an_answer_never_a_server_error(client: TestClient, message: Any) -> None:
    text = message if isinstance(message, str) else json.dumps(message)
    answer = post(client, signed(envelope("Notification", Message=text)))
    assert answer.status_code in (200, 400), answer.text
