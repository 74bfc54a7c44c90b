"""The ses provider against moto's standalone SES v2 server on 127.0.0.1, which checks our SigV4 signatures."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_string, policy
from typing import Any

import boto3
import httpx
import moto.settings
import pytest
from moto.backends import get_backend
from moto.core.responses import ActionAuthenticatorMixin
from moto.server import ThreadedMotoServer
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from newsletter.config import Settings
from newsletter.dispatch import Sending, SendOptions, send_issue
from newsletter.errors import ConfigError, ProviderAuthError, ProviderUnavailable
from newsletter.models import DeliveryRow
from newsletter.providers.ses import SesProvider
from newsletter.wiring import provider_for
from tests.newsletter.providers.test_http_providers import ENVELOPE, messages
from tests.newsletter.test_issues import build, seed
from tests.wire_server import DOMAIN

REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's default account


@dataclass
class Moto:
    url: str
    key_id: str
    secret: str

    def sent(self) -> list[Any]:
        """Every raw message moto's SES took, in order."""
        return list(get_backend("ses")[ACCOUNT][REGION].sent_messages)

    def provider(self, **overrides: Any) -> SesProvider:
        options: dict[str, Any] = {"region": REGION, "api_key": self.key_id, "secret_access_key": self.secret,
                                   "domain": DOMAIN, "base_url": self.url, "sleep": lambda _s: None,
                                   "jitter": lambda: 1.0}
        return SesProvider(**(options | overrides))


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    running = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    running.start()
    host, port = running.get_host_and_port()
    yield f"http://{host}:{port}"
    running.stop()


@pytest.fixture
def ses(server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Moto]:
    """A fresh moto: an IAM user's key, the sender's domain verified, then every request's signature checked."""
    httpx.post(f"{server}/moto-api/reset", timeout=10).raise_for_status()
    clients = {"endpoint_url": server, "region_name": REGION, "aws_access_key_id": "setup",
               "aws_secret_access_key": "setup"}
    iam = boto3.client("iam", **clients)
    iam.create_user(UserName="newsletter")
    key = iam.create_access_key(UserName="newsletter")["AccessKey"]
    allow = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ses:*", "Resource": "*"}]}
    iam.put_user_policy(UserName="newsletter", PolicyName="send", PolicyDocument=json.dumps(allow))
    boto3.client("sesv2", **clients).create_email_identity(EmailIdentity=DOMAIN)
    monkeypatch.setattr(moto.settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)  # moto's switch for checking signatures
    monkeypatch.setattr(ActionAuthenticatorMixin, "request_count", 0)
    yield Moto(server, key["AccessKeyId"], key["SecretAccessKey"])


def test_each_reader_gets_full_mime_with_their_own_one_click_headers(ses: Moto) -> None:
    batch = messages(3, cohorts=2)
    with ses.provider() as provider:
        results = provider.send_messages(batch)
    assert [r.status for r in results] == ["submitted"] * 3
    assert all(r.provider_id for r in results) and len({r.provider_id for r in results}) == 3
    sent = ses.sent()
    assert len(sent) == 3
    for message, raw in zip(batch, sent, strict=True):
        n = message.delivery_id
        assert raw.source == "verdicts@news.example.com" and message.to in raw.destinations
        # The raw header bytes: one line of angle-bracketed URLs, no RFC 2047 encoding.
        assert (f"List-Unsubscribe: <https://app.example.com/unsubscribe/tok{n}&x>,\r\n "
                f"<mailto:unsub@{DOMAIN}?subject=u{n}>\r\n") in raw.raw_data
        assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in raw.raw_data
        parsed = message_from_string(raw.raw_data, policy=policy.default)
        html = parsed.get_body(("html",)).get_content()
        assert f'href="https://app.example.com/unsubscribe/tok{n}&amp;x"' in html and f"Hello {n % 2}" in html
        assert parsed["Message-ID"].endswith(f"@{DOMAIN}>")


def test_the_delivery_id_travels_as_an_email_tag_in_the_configuration_set(ses: Moto) -> None:
    seen: list[dict[str, Any]] = []

    def spy(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        with httpx.Client() as real:  # then on to moto, signature and all
            return real.send(httpx.Request(request.method, request.url, headers=request.headers,
                                           content=request.content))

    with ses.provider(configuration_set="newsletter", transport=httpx.MockTransport(spy)) as provider:
        provider.send_messages(messages(1, start=41))
    assert seen[0]["EmailTags"] == [{"Name": "delivery_id", "Value": "41"}]
    assert seen[0]["ConfigurationSetName"] == "newsletter"
    assert seen[0]["Destination"] == {"ToAddresses": ["reader41@example.org"]}


def test_a_non_ascii_local_part_is_rejected_alone_and_a_unicode_domain_goes_as_punycode(ses: Moto) -> None:
    batch = messages(3, bad={1: "jörg@example.org", 2: "anna@bücher.example"})
    with ses.provider() as provider:
        results = provider.send_messages(batch)
    assert results[0].status == "rejected" and "SMTPUTF8" in (results[0].reason or "")
    assert "jörg" not in (results[0].reason or "")
    assert [r.status for r in results[1:]] == ["submitted", "submitted"]
    assert [raw.destinations[0] for raw in ses.sent()] == ["anna@xn--bcher-kva.example", "reader3@example.org"]


def test_a_wrong_secret_is_an_auth_error_naming_the_settings(ses: Moto) -> None:
    with ses.provider(secret_access_key="wrong") as provider, pytest.raises(ProviderAuthError) as caught:
        provider.send_messages(messages(2))
    assert "NEWSLETTER_SES_SECRET_ACCESS_KEY" in str(caught.value) and "SignatureDoesNotMatch" in str(caught.value)
    assert ses.sent() == []


def test_a_session_token_is_signed_along(ses: Moto) -> None:
    # moto knows no such token for this key: it must refuse it, which proves the token was sent and signed.
    with ses.provider(session_token="not-a-token") as provider, pytest.raises(ProviderAuthError):
        provider.send_messages(messages(1))


def test_an_unverified_sender_pauses_instead_of_rejecting_every_reader(ses: Moto) -> None:
    batch = [m.__class__(**{**{f: getattr(m, f) for f in m.__slots__}, "sender": "Other <x@unverified.example>"})
             for m in messages(2)]
    with ses.provider() as provider, pytest.raises(ProviderAuthError) as caught:
        provider.send_messages(batch)
    assert "sender identity" in str(caught.value)


def test_settings_name_what_is_missing_for_ses() -> None:
    settings = Settings(_env_file=None, provider="ses", ses_region="eu-west-1")  # type: ignore[call-arg]
    with pytest.raises(ConfigError) as caught:
        provider_for(settings)
    assert "NEWSLETTER_SES_ACCESS_KEY_ID and NEWSLETTER_SES_SECRET_ACCESS_KEY are not set" in str(caught.value)
    full = Settings(_env_file=None, provider="ses", ses_region="eu-west-1", ses_access_key_id="AKID",  # type: ignore[call-arg]
                    ses_secret_access_key="s", ses_configuration_set="news")
    provider = provider_for(full)
    assert isinstance(provider, SesProvider)
    assert provider.base_url == "https://email.eu-west-1.amazonaws.com" and provider.configuration_set == "news"
    with pytest.raises(ValueError, match="not an AWS region"):
        Settings(_env_file=None, ses_region="Ireland")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="not an SNS topic ARN"):
        Settings(_env_file=None, ses_sns_topic_arns="arn:aws:sns:eu-west-1:1:x, ses-events")  # type: ignore[call-arg]
    topics = Settings(_env_file=None, ses_sns_topic_arns="arn:aws:sns:eu-west-1:123456789012:a, "  # type: ignore[call-arg]
                      "arn:aws:sns:us-east-1:123456789012:b").sns_topic_arns
    assert topics == {"arn:aws:sns:eu-west-1:123456789012:a", "arn:aws:sns:us-east-1:123456789012:b"}
    bulk = provider_for(full.model_copy(update={"ses_mode": "bulk"}))
    assert type(bulk).__name__ == "SesBulkProvider"
    raw = provider_for(full.model_copy(update={"ses_mode": "raw"}))
    assert type(raw) is SesProvider


# --- the failure policy, with SES's own error answers (httpx.MockTransport) ------------------------------------

def _error(status: int, code: str, message: str = "said the service") -> httpx.Response:
    return httpx.Response(status, headers={"x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/"},
                          json={"message": message})


def _ok(n: int) -> httpx.Response:
    return httpx.Response(200, json={"MessageId": f"ses-{n}"})


def scripted(*answers: httpx.Response | Exception) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """A transport answering each request with the next scripted answer (then 200 with a MessageId)."""
    queue, seen = list(answers), []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if queue:
            item = queue.pop(0)
            if isinstance(item, Exception):
                raise item
            return item
        return _ok(len(seen))
    return httpx.MockTransport(answer), seen


def mocked(transport: httpx.MockTransport, sleeps: list[float] | None = None) -> SesProvider:
    return SesProvider(region=REGION, api_key="AKID", secret_access_key="secret", domain=DOMAIN,
                       transport=transport, max_retries=3, sleep=(sleeps if sleeps is not None else []).append, jitter=lambda: 1.0)


@pytest.mark.parametrize("throttle", [_error(429, "TooManyRequestsException"),
                                      _error(400, "LimitExceededException", "Maximum sending rate exceeded."),
                                      httpx.Response(400, json={"__type": "Throttling", "message": "slow down"})])
def test_throttling_is_waited_out_and_retried(throttle: httpx.Response) -> None:
    transport, seen = scripted(throttle, throttle)
    sleeps: list[float] = []
    with mocked(transport, sleeps) as provider:
        results = provider.send_messages(messages(1))
    assert results[0].status == "submitted" and len(seen) == 3 and len(sleeps) == 2


def test_5xx_is_retried_then_gives_up_with_what_was_settled() -> None:
    failing = _error(500, "InternalServiceErrorException")
    transport, seen = scripted(_ok(1), failing, failing, failing, failing)
    with mocked(transport) as provider, pytest.raises(ProviderUnavailable) as caught:
        provider.send_messages(messages(3))
    assert [r.delivery_id for r in caught.value.settled] == [1] and caught.value.unknown == ()
    assert len(seen) == 5  # one success, then the first attempt and three retries of the second message


def test_a_timeout_after_sending_marks_only_that_message_unknown_and_releases_the_rest() -> None:
    transport, seen = scripted(_ok(1), httpx.ReadTimeout("slow"))
    with mocked(transport) as provider, pytest.raises(ProviderUnavailable) as caught:
        provider.send_messages(messages(3))
    assert [r.delivery_id for r in caught.value.settled] == [1] and caught.value.unknown == (2,)
    assert len(seen) == 2  # never retried blindly, and the third never went


@pytest.mark.parametrize("answer", [_error(403, "UnrecognizedClientException", "The security token is invalid."),
                                    _error(400, "ExpiredTokenException", "The security token has expired."),
                                    _error(403, "InvalidSignatureException")])
def test_key_and_signature_errors_pause_at_once(answer: httpx.Response) -> None:
    transport, seen = scripted(answer)
    with mocked(transport) as provider, pytest.raises(ProviderAuthError) as caught:
        provider.send_messages(messages(2))
    assert len(seen) == 1 and "NEWSLETTER_SES_ACCESS_KEY_ID" in str(caught.value)


@pytest.mark.parametrize("code", ["SendingPausedException", "AccountSuspendedException"])
def test_a_paused_account_pauses_the_issue_keeping_what_went(code: str) -> None:
    transport, _seen = scripted(_ok(1), _error(400, code, "Sending is paused for this account."))
    with mocked(transport) as provider, pytest.raises(ProviderAuthError) as caught:
        provider.send_messages(messages(2))
    assert code in str(caught.value) and [r.delivery_id for r in caught.value.settled] == [1]


def test_a_refused_recipient_is_rejected_alone_without_their_address_in_the_reason() -> None:
    refusal = _error(400, "MessageRejected", "Email address is not verified. The following identities failed "
                     "the check in region EU-WEST-1: reader2@example.org")
    transport, _seen = scripted(_ok(1), refusal)
    with mocked(transport) as provider:
        results = provider.send_messages(messages(3))
    assert [r.status for r in results] == ["submitted", "rejected", "submitted"]
    assert "reader2@example.org" not in (results[1].reason or "") and "MessageRejected" in (results[1].reason or "")


def test_every_attempt_is_signed_for_ses_in_the_region() -> None:
    transport, seen = scripted(_error(429, "TooManyRequestsException"))
    with mocked(transport) as provider:
        provider.send_messages(messages(1))
    for request in seen:
        assert request.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKID/")
        assert f"/{REGION}/ses/aws4_request" in request.headers["authorization"]
        assert "SignedHeaders=content-type;host;x-amz-date," in request.headers["authorization"]
        assert request.url.host == f"email.{REGION}.amazonaws.com"


def test_an_issue_goes_out_through_moto_to_every_reader_once(engine: Engine, ses: Moto) -> None:
    directory = seed(engine)
    build(engine, directory)  # ten readers in four cohorts
    with ses.provider() as provider:
        report = send_issue(engine, 1, provider=provider,
                            sending=Sending(directory, ENVELOPE, SendOptions(batch_size=4)))
    assert report.status == "sent" and report.submitted == 10
    destinations = sorted(raw.destinations[0] for raw in ses.sent())
    assert len(destinations) == 10 and len(set(destinations)) == 10
    with Session(engine) as session:
        ids = {row.provider_id for row in session.exec(select(DeliveryRow)).all()}
    assert len(ids) == 10 and None not in ids
