"""Fuzzing the four webhook endpoints on both databases: random JSON shapes and random bytes, validly signed.

Whatever arrives, the answer is never a server error, and a request that is not accepted changes nothing.
Bounded and seeded, so a run takes seconds and a failure repeats.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from tests.newsletter.web.test_provider_hooks import app, mailgun_signature, signed, snapshot

__all__ = ["app"]  # the fixture, imported for its use here
FUZZ = settings(max_examples=30, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
SERVICES = ["postmark", "sendgrid", "mailgun", "resend"]
FIELDS = ["RecordType", "ID", "MessageID", "Type", "Inactive", "SuppressSending", "SuppressionReason", "Email",
          "Recipient", "Metadata", "ChangedAt", "event", "email", "timestamp", "sg_event_id", "sg_message_id",
          "type", "delivery_id", "id", "severity", "recipient", "user-variables", "data", "to", "bounce", "tags"]
WORDS = ["Bounce", "HardBounce", "SpamComplaint", "SubscriptionChange", "Delivery", "bounce", "blocked",
         "spamreport", "unsubscribe", "failed", "permanent", "complained", "unsubscribed", "email.bounced",
         "email.complained", "email.suppressed", "Permanent", "all0@example.com", "ALL1@example.com",
         "design0@example.com", "free@example.com", "1", "2147483648", "-1"]
# Text from every code point, NUL and lone surrogates included: json.dumps escapes them as \u0000 and \ud800.
TEXT = st.text(st.characters(exclude_categories=()), max_size=12)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | TEXT | st.sampled_from(WORDS)
KEYS = st.sampled_from(FIELDS) | TEXT
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=6),
                    max_leaves=16)

ADDRESS = st.sampled_from(["all0@example.com", "ALL1@example.com", "design0@example.com", "free@example.com"])
ANY = SCALARS | JSON
DELIVERY = st.fixed_dictionaries({}, optional={"delivery_id": st.sampled_from(["1", "2", 3, "9" * 30]) | ANY}) | ANY


def one_of_or_any(*words: str) -> st.SearchStrategy[Any]:
    return st.sampled_from(words) | ANY


# Near-valid events: the service's own fields and words, each now and then of the wrong type.
SHAPES: dict[str, st.SearchStrategy[Any]] = {
    "postmark": st.fixed_dictionaries(
        {"RecordType": one_of_or_any("Bounce", "SpamComplaint", "SubscriptionChange", "Delivery")},
        optional={"ID": ANY, "MessageID": ANY, "Type": one_of_or_any("HardBounce", "SoftBounce"),
                  "Inactive": ANY, "SuppressSending": ANY, "SuppressionReason": one_of_or_any("HardBounce"),
                  "Email": ADDRESS | ANY, "Recipient": ADDRESS | ANY, "Metadata": DELIVERY, "ChangedAt": ANY}),
    "sendgrid": st.lists(st.fixed_dictionaries(
        {"event": one_of_or_any("bounce", "spamreport", "unsubscribe", "delivered")},
        optional={"email": ADDRESS | ANY, "timestamp": ANY, "sg_event_id": ANY, "sg_message_id": ANY,
                  "type": one_of_or_any("bounce", "blocked"), "delivery_id": ANY}), max_size=3) | ANY,
    "mailgun": st.fixed_dictionaries(
        {"event": one_of_or_any("failed", "complained", "unsubscribed", "delivered")},
        optional={"id": ANY, "severity": one_of_or_any("permanent", "temporary"), "recipient": ADDRESS | ANY,
                  "timestamp": ANY, "user-variables": DELIVERY}),
    "resend": st.fixed_dictionaries(
        {"type": one_of_or_any("email.bounced", "email.complained", "email.suppressed", "email.delivered")},
        optional={"data": st.fixed_dictionaries({}, optional={
            "to": st.lists(ADDRESS | ANY, max_size=2) | ANY, "bounce": st.fixed_dictionaries(
                {}, optional={"type": one_of_or_any("Permanent", "Transient")}) | ANY, "tags": DELIVERY}) | ANY}),
}
DEEP = st.integers(min_value=2_000, max_value=200_000).map(lambda n: b"[" * n + b"]" * n)


def post(client: TestClient, service: str, body: bytes, headers: dict[str, str]) -> int:
    return client.post(f"/webhooks/{service}", content=body, headers=headers).status_code


def check(client: TestClient, engine: Engine, service: str, body: bytes, headers: dict[str, str]) -> None:
    before = snapshot(engine)
    code = post(client, service, body, headers)
    assert code < 500, (service, body[:300])
    if code != 200:
        assert snapshot(engine) == before, (service, code, body[:300])


def signed_json(service: str, shape: Any) -> tuple[bytes, dict[str, str]]:
    if service == "mailgun":  # the signature rides in the body, beside the random event
        return json.dumps({"signature": mailgun_signature(), "event-data": shape}).encode(), {}
    body = json.dumps(shape).encode()
    return body, signed(service, body)


@pytest.mark.parametrize("service", sorted(SHAPES))
def test_signed_random_json_never_breaks_the_server(app: TestClient, engine: Engine, service: str) -> None:
    @FUZZ
    @given(shape=SHAPES[service] | JSON)
    def run(shape: Any) -> None:
        check(app, engine, service, *signed_json(service, shape))

    run()


@pytest.mark.parametrize("service", SERVICES)
def test_signed_random_bytes_never_break_the_server(app: TestClient, engine: Engine, service: str) -> None:
    @FUZZ
    @given(body=st.binary(max_size=200) | DEEP | JSON.map(lambda shape: json.dumps(shape).encode()[:-1]))
    def run(body: bytes) -> None:
        check(app, engine, service, body, signed(service, body))

    run()


@pytest.mark.parametrize("service", SERVICES)
def test_random_headers_are_refused_and_change_nothing(app: TestClient, engine: Engine, service: str) -> None:
    header_names = st.sampled_from(["Authorization", "X-Twilio-Email-Event-Webhook-Signature",
                                    "X-Twilio-Email-Event-Webhook-Timestamp", "svix-id", "svix-timestamp",
                                    "svix-signature"])
    header_values = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)

    @FUZZ
    @given(headers=st.dictionaries(header_names, header_values, max_size=4), shape=JSON)
    def run(headers: dict[str, str], shape: Any) -> None:
        body = json.dumps({"signature": shape, "event-data": shape} if service == "mailgun" else shape).encode()
        before = snapshot(engine)
        assert post(app, service, body, headers) in (400, 401)
        assert snapshot(engine) == before

    run()
