"""Amazon SNS over HTTPS, the way SES bounces, complaints and deliveries arrive: verify, confirm, hand on.

Every message is checked before anything in it is believed:

* its topic is one we subscribed (``NEWSLETTER_SES_SNS_TOPIC_ARNS``): a valid SNS signature only proves that
  *some* topic sent it, and anyone can make a topic and point it at this endpoint;
* its signature: SignatureVersion 1 is SHA1withRSA, 2 is SHA256withRSA, over the canonical string the SNS docs
  define ("Key\\nvalue\\n" for Message, MessageId, Subject if present, Timestamp, TopicArn, Type; confirmations
  sign Message, MessageId, SubscribeURL, Timestamp, Token, TopicArn, Type);
* the signing certificate comes only from ``https://sns.<the topic's region>.amazonaws.com/….pem`` (TLS proves
  the host), is cached, and must be within its validity;
* its Timestamp is at most an hour old (SNS retries an HTTPS delivery for at most an hour), and every event it
  carries is applied once whatever arrives again (``webhooks.apply``).

A ``SubscriptionConfirmation`` is confirmed by fetching its ``SubscribeURL``, only over https on the topic's own
``sns.<region>.amazonaws.com`` host. Fetches go through an injectable httpx transport (tests trust their own
certificate that way). Nothing here imports a web framework.
"""

from __future__ import annotations

import base64
import binascii
import logging
import math
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from newsletter.errors import WebhookPayloadError, WebhookRejected
from subscribers.webhook_payloads import SnsEnvelope, load_json
from subscribers.webhooks import Gate, Token

WINDOW = 3600 + 300  # SNS's longest retry, plus clock skew
MAX_CERTIFICATE = 64 * 1024
TYPES = ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation")
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}
log = logging.getLogger("subscribers.sns")


def canonical(envelope: SnsEnvelope) -> bytes:
    """The bytes SNS signed for this message, as its docs define them per message type."""
    if envelope.Type == "Notification":
        names = ["Message", "MessageId", *(["Subject"] if envelope.Subject is not None else []),
                 "Timestamp", "TopicArn", "Type"]
    else:
        names = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    return "".join(f"{name}\n{getattr(envelope, name) or ''}\n" for name in names).encode("utf-8")


def region_of(topic_arn: str) -> str:
    """The region of ``arn:aws:sns:<region>:<account>:<name>``."""
    return topic_arn.split(":")[3]


def on_sns_host(url: str, region: str, *, suffix: str = "") -> bool:
    """Whether ``url`` is https on ``sns.<region>.amazonaws.com`` (or ``.com.cn``), default port, no user info."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    hosts = (f"sns.{region}.amazonaws.com", f"sns.{region}.amazonaws.com.cn")
    return (parts.scheme == "https" and parts.hostname in hosts and port is None and parts.username is None
            and parts.password is None and "@" not in parts.netloc and parts.path.endswith(suffix))


class Certificates:
    """SNS signing certificates, each fetched once over https and kept (at most ``limit`` of them)."""

    def __init__(self, *, transport: httpx.BaseTransport | None = None, timeout: float = 5.0,
                 limit: int = 32) -> None:
        self._transport, self._timeout, self._limit = transport, timeout, limit
        self._keys: dict[str, x509.Certificate] = {}
        self._lock = threading.Lock()

    def public_key(self, url: str, now: datetime) -> rsa.RSAPublicKey:
        """The RSA key of the certificate at ``url`` (already checked to be an SNS URL); WebhookRejected if unusable."""
        with self._lock:
            certificate = self._keys.get(url)
        if certificate is None:
            certificate = self._fetch(url)
            with self._lock:
                if len(self._keys) >= self._limit:
                    self._keys.pop(next(iter(self._keys)))
                self._keys[url] = certificate
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            raise WebhookRejected("the SNS signing certificate is not valid now")
        key = certificate.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise WebhookRejected("the SNS signing certificate holds no RSA key")
        return key

    def _fetch(self, url: str) -> x509.Certificate:
        try:
            with httpx.Client(transport=self._transport, timeout=self._timeout, follow_redirects=False) as client:
                response = client.get(url)
        except httpx.HTTPError as exc:
            raise WebhookRejected(f"the SNS signing certificate could not be fetched ({type(exc).__name__})") from exc
        if response.status_code != 200 or len(response.content) > MAX_CERTIFICATE:
            raise WebhookRejected(f"the SNS signing certificate could not be fetched (HTTP {response.status_code})")
        try:
            return x509.load_pem_x509_certificate(response.content)
        except ValueError as exc:
            raise WebhookRejected("the SNS signing certificate is not a PEM certificate") from exc


class SnsEndpoint:
    """The checks and the handshake of an SNS HTTPS subscription for ``topics``."""

    def __init__(self, topics: frozenset[str], *, certificates: Certificates | None = None,
                 transport: httpx.BaseTransport | None = None, timeout: float = 10.0) -> None:
        self.topics = topics
        self.certificates = certificates or Certificates(transport=transport)
        self._transport, self._timeout = transport, timeout

    def gate(self) -> Gate:
        """The webhook gate: the topic header before the body is read, then the whole message."""
        return Gate(self.check_headers, self.check_body)

    def check_headers(self, headers: Mapping[str, str], now: float) -> None:
        """SNS names the topic in ``x-amz-sns-topic-arn``: a stranger's topic is refused before its body is read."""
        if headers.get("x-amz-sns-topic-arn") not in self.topics:
            raise WebhookRejected("not a subscribed SNS topic")

    def check_body(self, headers: Mapping[str, str], body: bytes, now: float) -> Token | None:
        """Verify the message; confirm a subscription it asks for. Returns no token: SNS ids dedupe instead."""
        envelope = self.verify(headers, body, now)
        if envelope.Type == "SubscriptionConfirmation":
            self.confirm(envelope)
        elif envelope.Type == "UnsubscribeConfirmation":
            log.warning("SNS topic %s unsubscribed this endpoint: SES events no longer arrive", envelope.TopicArn)
        return None

    def verify(self, headers: Mapping[str, str], body: bytes, now: float) -> SnsEnvelope:
        """The message, if its topic, type, age, certificate URL and signature all check out; else WebhookRejected."""
        try:
            envelope = SnsEnvelope.model_validate(load_json(body))
        except (ValueError, WebhookPayloadError) as exc:
            raise WebhookRejected("not an SNS message") from exc
        if envelope.TopicArn not in self.topics or headers.get("x-amz-sns-topic-arn") != envelope.TopicArn:
            raise WebhookRejected("not a subscribed SNS topic")
        if envelope.Type not in TYPES or headers.get("x-amz-sns-message-type", envelope.Type) != envelope.Type:
            raise WebhookRejected("not an SNS message type")
        moment = _fresh(envelope.Timestamp, now)
        region = region_of(envelope.TopicArn)
        if not on_sns_host(envelope.SigningCertURL, region, suffix=".pem"):
            raise WebhookRejected(f"the signing certificate is not on https://sns.{region}.amazonaws.com")
        algorithm = _HASHES.get(envelope.SignatureVersion)
        if algorithm is None:
            raise WebhookRejected("unknown SNS SignatureVersion")
        key = self.certificates.public_key(envelope.SigningCertURL, moment)
        try:
            signature = base64.b64decode(envelope.Signature, validate=True)
            key.verify(signature, canonical(envelope), padding.PKCS1v15(), algorithm())
        except (InvalidSignature, binascii.Error, ValueError) as exc:
            raise WebhookRejected("bad signature") from exc
        return envelope

    def confirm(self, envelope: SnsEnvelope) -> None:
        """Fetch the SubscribeURL, only on the topic's own SNS host over https."""
        url = envelope.SubscribeURL or ""
        if not on_sns_host(url, region_of(envelope.TopicArn)):
            raise WebhookRejected("the SubscribeURL is not on the topic's https SNS host; not confirmed")
        try:
            with httpx.Client(transport=self._transport, timeout=self._timeout, follow_redirects=False) as client:
                response = client.get(url)
        except httpx.HTTPError as exc:
            raise WebhookRejected(f"the subscription could not be confirmed ({type(exc).__name__}); "
                                  "confirm it in the SNS console") from exc
        if response.status_code != 200:
            raise WebhookRejected(f"SNS refused the confirmation (HTTP {response.status_code}); "
                                  "confirm it in the SNS console")
        log.info("confirmed the SNS subscription to %s", envelope.TopicArn)


def endpoint_for(topics: frozenset[str], *, transport: httpx.BaseTransport | None = None) -> SnsEndpoint | None:
    """The SNS endpoint for these topics, or None when none is configured (the ``ses`` webhook is then off)."""
    return SnsEndpoint(topics, transport=transport) if topics else None


def _fresh(timestamp: str, now: float) -> datetime:
    try:
        moment = datetime.fromisoformat(timestamp)
    except ValueError:
        raise WebhookRejected("the SNS Timestamp is not a time") from None
    if moment.tzinfo is None:
        raise WebhookRejected("the SNS Timestamp has no zone")
    age = now - moment.timestamp()
    if not math.isfinite(age) or abs(age) > WINDOW:
        raise WebhookRejected("the SNS Timestamp is more than an hour off (a replay?)")
    return datetime.fromtimestamp(now, UTC)
