"""Each HTTP provider against a real local server speaking that service's wire format, faults included."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from newsletter.dispatch import Envelope, Sending, SendOptions, personalise, send_issue
from newsletter.errors import ProviderAmbiguous, ProviderAuthError, ProviderRequestError, ProviderUnavailable
from newsletter.providers.http import HttpProvider
from newsletter.providers.mailgun import MailgunProvider
from newsletter.providers.postmark import PostmarkProvider
from newsletter.providers.resend import ResendProvider, idempotency_key
from newsletter.providers.sendgrid import SendGridProvider
from newsletter.render import PreparedEmail
from newsletter.values import Message, Recipient, RenderedEmail
from tests.newsletter.test_issues import build, seed
from tests.wire_server import DOMAIN, KEY, Fault, WireServer

ENVELOPE = Envelope("Weekly AI Tool Verdicts <verdicts@news.example.com>", "Weekly AI Tool Verdicts", DOMAIN,
                    "https://app.example.com")
HTML = '<p>Hello</p><a href="%%{unsubscribe_url}%%">Unsubscribe</a> <a href="%%{preferences_url}%%">Prefs</a> %%{web_url}%%'
TEXT = "Hello\nUnsubscribe: %%{unsubscribe_url}%%\nWeb: %%{web_url}%%\n"
PROVIDERS: dict[str, Callable[..., HttpProvider]] = {
    "postmark": lambda **kw: PostmarkProvider(**kw),
    "sendgrid": lambda **kw: SendGridProvider(**kw),
    "mailgun": lambda **kw: MailgunProvider(domain=DOMAIN, **kw),
    "resend": lambda **kw: ResendProvider(**kw),
}


@pytest.fixture
def server() -> Iterator[WireServer]:
    with WireServer() as running:
        yield running


def messages(count: int, *, cohorts: int = 1, start: int = 1, bad: dict[int, str] | None = None,
             pad: int = 0, subject: str = "Subject {c}") -> list[Message]:
    """``count`` personalised messages over ``cohorts`` bodies; ``bad`` replaces some addresses."""
    filler = "<p>" + "verdict " * (pad // 8) + "</p>"
    prepared = [PreparedEmail.of(RenderedEmail(f"c{c}", subject.format(c=c), "pre",
                                               HTML.replace("Hello", f"Hello {c}") + filler, TEXT), key=f"1:c{c}")
                for c in range(cohorts)]
    out = []
    for n in range(start, start + count):
        address = (bad or {}).get(n, f"reader{n}@example.org")
        recipient = Recipient(n, address, f"https://app.example.com/unsubscribe/tok{n}&x",
                              f"https://app.example.com/preferences/pref{n}", f"mailto:unsub@{DOMAIN}?subject=u{n}")
        out.append(personalise(prepared[n % cohorts], recipient, delivery_id=n, issue_number=1, envelope=ENVELOPE))
    return out


def make(name: str, server: WireServer, sleeps: list[float] | None = None, **kw: Any) -> HttpProvider:
    record = sleeps.append if sleeps is not None else (lambda _s: None)
    return PROVIDERS[name](api_key=kw.pop("api_key", KEY), base_url=server.url, sleep=record, jitter=lambda: 1.0, **kw)


@pytest.mark.parametrize("name", PROVIDERS)
def test_every_reader_gets_their_own_message(name: str, server: WireServer) -> None:
    batch = messages(7, cohorts=2)
    with make(name, server) as provider:
        results = provider.send_messages(batch)
    assert [r.delivery_id for r in results] == [m.delivery_id for m in batch]
    assert all(r.status == "submitted" and r.provider_id for r in results)
    received = {item.to: item for item in server.state.received}
    assert set(received) == {m.to for m in batch}
    for message in batch:
        got = received[message.to]
        n = message.delivery_id
        assert f'href="https://app.example.com/unsubscribe/tok{n}&amp;x"' in got.html  # escaped once, in HTML
        assert f"Unsubscribe: https://app.example.com/unsubscribe/tok{n}&x" in got.text  # raw in text
        assert f"Hello {n % 2}" in got.html and "https://app.example.com/archive/1" in got.html
        assert got.headers["List-Unsubscribe"] == (f"<https://app.example.com/unsubscribe/tok{n}&x>, "
                                                   f"<mailto:unsub@{DOMAIN}?subject=u{n}>")
        assert got.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert got.delivery_id == str(n)
        assert "tok" not in got.html.replace(f"tok{n}", "")  # nobody else's link
    requests = [service for service, _ in server.state.requests]
    assert requests == [name] * (2 if name in ("sendgrid", "mailgun") else 1)  # body once per cohort



# A catalog title as an importer may have stored it: CR/LF, a bare LF, Unicode line and paragraph separators.
BROKEN_SUBJECT = "Patchwise vs\r\nStackpilot {c}\n,\u2028and 2 more \u2029verdicts\x85 \r"


@pytest.mark.parametrize("name", PROVIDERS)
def test_line_breaks_in_a_subject_become_spaces(name: str, server: WireServer) -> None:
    with make(name, server) as provider:
        results = provider.send_messages(messages(3, cohorts=2, subject=BROKEN_SUBJECT))
    assert all(r.status == "submitted" for r in results)
    assert sorted(item.subject for item in server.state.received) == [
        "Patchwise vs Stackpilot 0 , and 2 more verdicts"] * 1 + ["Patchwise vs Stackpilot 1 , and 2 more verdicts"] * 2


@pytest.mark.parametrize("name", PROVIDERS)
def test_an_internationalised_domain_goes_out_in_ascii(name: str, server: WireServer) -> None:
    with make(name, server) as provider:
        results = provider.send_messages(messages(2, bad={1: "user@bücher.example"}))
    assert all(r.status == "submitted" for r in results)
    assert sorted(item.to for item in server.state.received) == ["reader2@example.org", "user@xn--bcher-kva.example"]

def test_fills_itself_sends_the_fills_itself(server: WireServer) -> None:
    with make("sendgrid", server) as sendgrid:
        sendgrid.send_messages(messages(200, pad=20_000))
    with make("postmark", server) as postmark:
        postmark.send_messages(messages(200, start=1000, pad=20_000))
    sizes = dict(server.state.requests)
    assert sizes["postmark"] > 200 * 20_000  # the body 200 times
    assert sizes["sendgrid"] < 200 * 1_000 + 2 * 20_000  # the body once, plus small per-recipient values


def test_postmark_reads_every_error_code(server: WireServer) -> None:
    server.state.inactive.add("reader2@example.org")
    with make("postmark", server) as provider:
        results = provider.send_messages(messages(3, bad={3: "not-an-address"}))
    assert [(r.status, r.permanent) for r in results] == [("submitted", False), ("rejected", True), ("rejected", True)]
    assert results[1].reason is not None and results[1].reason.startswith("postmark 406: Found inactive addresses")
    assert results[2].reason is not None and "postmark 300" in results[2].reason


def test_resend_rejects_one_bad_address_alone(server: WireServer) -> None:
    with make("resend", server) as provider:
        results = provider.send_messages(messages(3, bad={2: "broken"}))
    assert [r.status for r in results] == ["submitted", "rejected", "submitted"]
    assert results[0].provider_id != results[2].provider_id
    assert results[1].reason == "resend: Invalid `to` field: broken"


@pytest.mark.parametrize(("name", "fault", "expected"), [
    ("postmark", Fault(429, (("Retry-After", "7"),)), 7.0),
    ("resend", Fault(429, (("ratelimit-reset", "3"), ("retry-after", "2")), '{"name": "rate_limit_exceeded"}'), 2.0),
    ("resend", Fault(429, (("ratelimit-reset", "3"),), '{"name": "rate_limit_exceeded"}'), 3.0),
    ("mailgun", Fault(429, (), '{"message": "Domain x is not allowed to send: recipient limit exceeded, '
                               'try again after Thu, 01 Jan 2099 00:00:00 GMT"}'), None),
])
def test_429_waits_as_the_service_says(name: str, fault: Fault, expected: float | None, server: WireServer) -> None:
    server.state.faults.append(fault)
    sleeps: list[float] = []
    provider = make(name, server, sleeps, max_wait=10_000_000_000.0)
    with provider:
        results = provider.send_messages(messages(2))
    assert all(r.status == "submitted" for r in results)
    assert len(sleeps) == 1
    if expected is not None:
        assert sleeps[0] == pytest.approx(expected, abs=0.01)
    else:
        assert sleeps[0] > 365 * 24 * 3600  # the date is far away; the provider waited for it


def test_a_wait_longer_than_allowed_gives_up_for_now(server: WireServer) -> None:
    server.state.faults.append(Fault(429, (("Retry-After", "3600"),)))
    with make("sendgrid", server, max_wait=60) as provider, pytest.raises(ProviderUnavailable, match="3600 s"):
        provider.send_messages(messages(1))
    assert server.state.received == []


def test_5xx_backs_off_exponentially_then_succeeds(server: WireServer) -> None:
    server.state.faults.extend([Fault(500), Fault(503), Fault(502)])
    sleeps: list[float] = []
    with make("sendgrid", server, sleeps) as provider:
        assert provider.send_messages(messages(2))[0].status == "submitted"
    assert sleeps == [0.5, 1.0, 2.0]
    assert len(server.state.received) == 2


def test_persistent_failure_is_unavailable_after_the_retries(server: WireServer) -> None:
    server.state.faults.extend([Fault(500)] * 4)
    sleeps: list[float] = []
    with make("mailgun", server, sleeps, max_retries=3) as provider, pytest.raises(ProviderUnavailable,
                                                                                   match="after 4 attempts"):
        provider.send_messages(messages(1))
    assert len(sleeps) == 3 and server.state.received == []


def test_backoff_is_capped_and_jittered() -> None:
    provider = PostmarkProvider(api_key="k", jitter=lambda: 0.0)
    assert [provider.backoff(n) for n in (1, 2, 3)] == [0.25, 0.5, 1.0]
    assert provider.backoff(20) == 15.0
    assert PostmarkProvider(api_key="k", jitter=lambda: 1.0).backoff(20) == 30.0


@pytest.mark.parametrize("name", PROVIDERS)
def test_refused_credentials_name_the_setting(name: str, server: WireServer) -> None:
    with make(name, server, api_key="wrong") as provider, pytest.raises(ProviderAuthError,
                                                                       match="NEWSLETTER_PROVIDER_API_KEY"):
        provider.send_messages(messages(1))
    assert server.state.received == []


def test_unreachable_service_is_unavailable() -> None:
    provider = SendGridProvider(api_key=KEY, base_url="http://127.0.0.1:9", max_retries=1, sleep=lambda _: None)
    with provider, pytest.raises(ProviderUnavailable, match="cannot reach"):
        provider.send_messages(messages(1))


def test_timeout_without_idempotency_is_ambiguous(server: WireServer) -> None:
    server.state.faults.append(Fault(delay=1.0))
    with make("postmark", server, timeout=0.3) as provider, pytest.raises(ProviderAmbiguous, match="may have accepted"):
        provider.send_messages(messages(2))
    assert len(server.state.received) == 2  # it did go out: retrying blindly would have sent it twice


def test_timeout_with_idempotency_key_retries_and_sends_once(server: WireServer) -> None:
    server.state.faults.append(Fault(delay=1.0))
    batch = messages(3)
    with make("resend", server, timeout=0.3) as provider:
        results = provider.send_messages(batch)
    assert all(r.status == "submitted" for r in results)
    assert server.by_recipient() == {m.to: 1 for m in batch}
    assert idempotency_key(batch) == idempotency_key(list(reversed(batch)))


def test_resend_keys_a_claimed_batch_by_its_batch_key_not_by_what_is_left(server: WireServer) -> None:
    """The same batch again is deduplicated; a shrunk batch under its key is never sent a second time."""
    batch = messages(4)
    with make("resend", server) as provider:
        provider.send_batch(batch, key="batch-1")
        assert all(r.status == "submitted" for r in provider.send_batch(batch, key="batch-1"))
        with pytest.raises(ProviderAmbiguous, match="different request under this batch's key"):
            provider.send_batch(batch[1:], key="batch-1")
    assert server.by_recipient() == {m.to: 1 for m in batch}
    assert len({key for key in server.state.idempotency}) == 1


def test_a_malformed_request_is_refused_without_retry(server: WireServer) -> None:
    sleeps: list[float] = []
    with make("sendgrid", server, sleeps) as provider, pytest.raises(ProviderRequestError, match="HTTP 400"):
        provider.send_messages(messages(2, bad={1: "nope"}))
    assert sleeps == []


def test_mock_transport_unit_postmark_whole_batch_refusal() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["X-Postmark-Server-Token"] == "k"
        return httpx.Response(422, json={"ErrorCode": 402, "Message": "Invalid JSON"})

    provider = PostmarkProvider(api_key="k", transport=httpx.MockTransport(handler))
    with provider, pytest.raises(ProviderRequestError, match="ErrorCode 402: Invalid JSON"):
        provider.send_messages(messages(1))


def test_pre_encoded_bodies_decode_to_the_filled_message() -> None:
    import json

    from newsletter.providers.bodies import JsonBodies

    bodies = JsonBodies()
    for message in [*messages(3, cohorts=2, pad=500), replace_template(messages(1)[0])]:
        assert json.loads(b'"' + bodies.html(message) + b'"') == message.html
        assert json.loads(b'"' + bodies.text(message) + b'"') == message.text


def replace_template(message: Message) -> Message:
    from dataclasses import replace

    return replace(message, template=None, slots=(), html='<p>"quoted" – ünïcode</p>', text="line\nbreak")


@pytest.mark.parametrize("name", ["sendgrid", "mailgun"])
def test_a_failure_after_some_requests_keeps_what_the_service_accepted(name: str, server: WireServer) -> None:
    server.state.faults.extend([Fault(), Fault(500), Fault(500)])  # the second body's request fails for good
    batch = messages(6, cohorts=3)
    with make(name, server, max_retries=1) as provider, pytest.raises(ProviderUnavailable) as caught:
        provider.send_messages(batch)
    first_body = [m.delivery_id for m in batch if m.delivery_id % 3 == 1]
    assert [(r.delivery_id, r.status) for r in caught.value.settled] == [(i, "submitted") for i in first_body]
    assert sorted(int(item.delivery_id) for item in server.state.received) == first_body


def test_a_resend_after_a_failure_between_requests_gives_every_reader_one_copy(engine: Engine,
                                                                              server: WireServer) -> None:
    directory = seed(engine)
    build(engine, directory)  # ten readers in four cohorts: one batch of four bodies
    server.state.faults.extend([Fault(), Fault(500), Fault(500)])
    with make("sendgrid", server, max_retries=1) as provider:
        with pytest.raises(ProviderUnavailable):
            send_issue(engine, 1, provider=provider,
                       sending=Sending(directory, ENVELOPE, SendOptions(batch_size=10)))
        assert 0 < len(server.state.received) < 10
        report = send_issue(engine, 1, provider=provider,
                            sending=Sending(directory, ENVELOPE, SendOptions(batch_size=10)))
    assert report.status == "sent"
    assert sorted(server.by_recipient().values()) == [1] * 10


@pytest.mark.parametrize("name", ["postmark", "sendgrid"])
def test_a_retried_request_written_in_pieces_sends_the_same_bytes_with_their_length(name: str) -> None:
    bodies: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = request.read()
        assert int(request.headers["Content-Length"]) == len(body)
        assert "Transfer-Encoding" not in request.headers
        bodies.append(body)
        if len(bodies) == 1:
            return httpx.Response(503)
        items = json.loads(body)
        if name == "sendgrid":
            return httpx.Response(202, headers={"X-Message-ID": "m"})
        return httpx.Response(200, json=[{"ErrorCode": 0, "MessageID": f"id{i}", "To": m["To"]}
                                         for i, m in enumerate(items)])

    provider = PROVIDERS[name](api_key=KEY, transport=httpx.MockTransport(handler), sleep=lambda _s: None)
    with provider:
        results = provider.send_messages(messages(300, pad=40_000))  # more than one 64 KB chunk per request
    assert [r.status for r in results] == ["submitted"] * 300
    assert len(bodies) == 2 and bodies[0] == bodies[1]
