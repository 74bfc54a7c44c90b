"""The SMTP provider against a real aiosmtpd server: MIME as it arrives, refusals, login, STARTTLS."""

from __future__ import annotations

import contextlib
import datetime as dt
import email
import re
import socket
import ssl
from collections import Counter
from collections.abc import Iterator
from email import policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from newsletter import deliveries
from newsletter.dispatch import Sending, SendOptions, send_issue
from newsletter.errors import ProviderAuthError, ProviderUnavailable
from newsletter.models import DeliveryRow
from newsletter.providers.smtp import SmtpProvider
from tests.newsletter.providers.test_http_providers import BROKEN_SUBJECT, messages
from tests.newsletter.test_dispatch import ENVELOPE
from tests.newsletter.test_issues import build, seed


class Inbox:
    """Keeps what arrives; refuses some recipients like a real server would."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.refuse = {"reader2@example.org": "550 5.1.1 No such user", "reader3@example.org": "450 4.2.1 Try later"}

    async def handle_RCPT(self, server: Any, session: Any, envelope: Envelope, address: str, options: Any) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted"


def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"news", b"s3cret")
    return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535 itself


def certificate(folder: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A self-signed certificate for 127.0.0.1: the server's context and a client context that trusts it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    client = ssl.create_default_context(cafile=str(folder / "cert.pem"))
    return server, client


def free_port() -> int:
    """A port nobody listens on (aiosmtpd checks readiness by connecting, so port 0 won't do)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    handler = Inbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, authenticator=authenticator,
                            auth_require_tls=False)
    controller.start()
    yield handler, port
    controller.stop()


def test_messages_arrive_as_proper_mime_with_raw_unsubscribe_headers(inbox: tuple[Inbox, int]) -> None:
    handler, port = inbox
    provider = SmtpProvider(host="127.0.0.1", port=port, domain="news.example.com", security="none",
                            username="news", password="s3cret")
    results = provider.send_messages(messages(4))
    assert [(r.status, r.permanent) for r in results] == [
        ("submitted", False), ("rejected", True), ("rejected", False), ("submitted", False)]
    assert results[1].reason == "smtp 550: 5.1.1 No such user"
    assert [e.rcpt_tos for e in handler.envelopes] == [["reader1@example.org"], ["reader4@example.org"]]
    raw = handler.envelopes[0].content
    assert isinstance(raw, bytes)
    head = re.sub(rb"\r\n[ \t]+", b" ", raw.split(b"\r\n\r\n", 1)[0])
    assert (b"List-Unsubscribe: <https://app.example.com/unsubscribe/tok1&x>, "
            b"<mailto:unsub@news.example.com?subject=u1>") in head
    assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in head
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
    assert str(parsed["Message-ID"]).endswith("@news.example.com>")


def test_wrong_password_pauses_with_the_setting_named(inbox: tuple[Inbox, int]) -> None:
    _, port = inbox
    provider = SmtpProvider(host="127.0.0.1", port=port, domain="news.example.com", security="none",
                            username="news", password="wrong")
    with pytest.raises(ProviderAuthError, match="NEWSLETTER_SMTP_PASSWORD"):
        provider.send_messages(messages(1))


def test_starttls(tmp_path: Path) -> None:
    server_context, client_context = certificate(tmp_path)
    handler = Inbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, tls_context=server_context,
                            require_starttls=True, authenticator=authenticator, auth_require_tls=True,
                            server_hostname="localhost")
    controller.start()
    try:
        provider = SmtpProvider(host="localhost", port=port, domain="news.example.com", security="starttls",
                                username="news", password="s3cret", tls_context=client_context)
        assert provider.send_messages(messages(1))[0].status == "submitted"
        untrusting = SmtpProvider(host="localhost", port=port, domain="news.example.com", security="starttls")
        with pytest.raises(ProviderUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
            untrusting.send_messages(messages(1))
    finally:
        controller.stop()
    assert len(handler.envelopes) == 1


def test_no_server_is_unavailable() -> None:
    with pytest.raises(ProviderUnavailable, match=r"127\.0\.0\.1:9"):
        SmtpProvider(host="127.0.0.1", port=9, domain="x.example", security="none", timeout=2).send_messages(messages(1))


class FaultyInbox:
    """Accepts ``accept`` messages, then fails the next transaction once, the way ``fault`` says.

    ``421-mail``: answers MAIL with 421 and hangs up; ``drop-mail``: hangs up at MAIL without a word;
    ``421-data``: takes the message, answers 421 and hangs up (not accepted); ``drop-data``: keeps the message
    and hangs up before answering (accepted, but the sender cannot know).
    """

    def __init__(self, fault: str, accept: int = 2) -> None:
        self.fault, self.accept = fault, accept
        self.envelopes: list[Envelope] = []
        self.transactions = 0

    def _failing(self, phase: str) -> bool:
        return self.fault.endswith(phase) and self.transactions == self.accept + 1

    async def handle_MAIL(self, server: Any, session: Any, envelope: Envelope, address: str, options: Any) -> str:
        self.transactions += 1
        if self._failing("mail"):
            return _hang_up(server, "421 4.3.2 Service shutting down" if self.fault.startswith("421") else "")
        envelope.mail_from, envelope.mail_options = address, list(options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        if self._failing("data"):
            if self.fault.startswith("drop"):
                self.envelopes.append(envelope)
            return _hang_up(server, "421 4.3.0 Try again later" if self.fault.startswith("421") else "")
        self.envelopes.append(envelope)
        return "250 Message accepted"

    def copies(self) -> Counter[str]:
        return Counter(address for e in self.envelopes for address in e.rcpt_tos)


def _hang_up(server: Any, answer: str) -> str:
    """Close the connection: right after ``answer`` goes out, or at once (the answer is then never written)."""
    if answer:
        server.loop.call_soon(server.transport.close)
        return answer
    server.transport.close()
    return "250 never seen"


@contextlib.contextmanager
def serving(handler: Any, **options: Any) -> Iterator[int]:
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def plain(port: int) -> SmtpProvider:
    return SmtpProvider(host="127.0.0.1", port=port, domain="news.example.com", security="none", timeout=5)


@pytest.mark.parametrize(("fault", "unknown"), [("421-mail", ()), ("drop-mail", ()), ("421-data", ()),
                                                 ("drop-data", (3,))])
def test_a_failure_mid_batch_keeps_what_the_server_accepted(fault: str, unknown: tuple[int, ...]) -> None:
    handler = FaultyInbox(fault)
    with serving(handler, enable_SMTPUTF8=False) as port, pytest.raises(ProviderUnavailable) as caught:
        plain(port).send_messages(messages(5))
    assert [(r.delivery_id, r.status) for r in caught.value.settled] == [(1, "submitted"), (2, "submitted")]
    assert caught.value.unknown == unknown
    assert all(r.provider_id for r in caught.value.settled)


@pytest.mark.parametrize("fault", ["421-mail", "drop-mail", "421-data", "drop-data"])
def test_a_resend_after_a_failure_mid_batch_gives_every_reader_one_copy(engine: Engine, fault: str) -> None:
    directory = seed(engine)
    build(engine, directory)
    handler = FaultyInbox(fault)
    with serving(handler) as port:
        with pytest.raises(ProviderUnavailable):
            send_issue(engine, 1, provider=plain(port),
                       sending=Sending(directory, ENVELOPE, SendOptions(batch_size=4)))
        assert len(handler.copies()) == 2 + (fault == "drop-data")
        report = send_issue(engine, 1, provider=plain(port),
                            sending=Sending(directory, ENVELOPE, SendOptions(batch_size=4)))
    with Session(engine) as session:
        rows = {(d.status, (d.reason or "").startswith(deliveries.UNKNOWN_OUTCOME)) for d in
                session.exec(select(DeliveryRow)).all()}
    readers = 10
    if fault == "drop-data":  # the third may well have arrived: it is left for the operator, never sent twice
        assert rows == {("submitted", False), ("failed", True)}
        assert report.submitted == readers - 3
    else:
        assert rows == {("submitted", False)}
        assert report.submitted == readers - 2
    assert sorted(handler.copies().values()) == [1] * readers


class Keeper:
    """Keeps every message, with the MAIL options it came with."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted"


def header_lines(raw: bytes) -> dict[bytes, bytes]:
    head = re.sub(rb"\r\n[ \t]+", b" ", raw.split(b"\r\n\r\n", 1)[0])
    return {line.split(b":", 1)[0].lower(): line for line in head.split(b"\r\n")}


def test_an_idn_domain_goes_out_in_ascii_and_a_utf8_local_part_needs_smtputf8() -> None:
    batch = messages(3, bad={1: "user@bücher.example", 2: "üser@bücher.example"})
    handler = Keeper()
    with serving(handler, enable_SMTPUTF8=False) as port:
        results = plain(port).send_messages(batch)
    assert [(r.status, r.permanent) for r in results] == [("submitted", False), ("rejected", False),
                                                          ("submitted", False)]
    assert results[1].reason is not None and "needs SMTPUTF8" in results[1].reason
    assert [e.rcpt_tos for e in handler.envelopes] == [["user@xn--bcher-kva.example"], ["reader3@example.org"]]
    raw = handler.envelopes[0].original_content
    assert isinstance(raw, bytes) and raw.isascii()
    assert header_lines(raw)[b"to"] == b"To: user@xn--bcher-kva.example"
    assert all("SMTPUTF8" not in e.mail_options for e in handler.envelopes)


def test_smtputf8_is_used_only_where_the_server_offers_it_and_a_message_needs_it() -> None:
    batch = messages(2, bad={1: "üser@bücher.example"})
    handler = Keeper()
    with serving(handler, enable_SMTPUTF8=True) as port:
        results = plain(port).send_messages(batch)
    assert [r.status for r in results] == ["submitted", "submitted"]
    first, second = handler.envelopes
    assert first.rcpt_tos == ["üser@xn--bcher-kva.example"] and first.smtp_utf8
    assert isinstance(first.original_content, bytes)
    assert header_lines(first.original_content)[b"to"] == "To: üser@xn--bcher-kva.example".encode()
    assert second.rcpt_tos == ["reader2@example.org"] and not second.smtp_utf8
    assert isinstance(second.original_content, bytes) and second.original_content.isascii()


def test_line_breaks_in_a_subject_become_spaces_on_the_wire() -> None:
    handler = Keeper()
    with serving(handler) as port:
        plain(port).send_messages(messages(1, subject=BROKEN_SUBJECT))
    raw = handler.envelopes[0].original_content
    assert isinstance(raw, bytes)
    assert header_lines(raw)[b"subject"] == b"Subject: Patchwise vs Stackpilot 0 , and 2 more verdicts"
