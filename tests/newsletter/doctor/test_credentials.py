"""Provider key checks against the local wire server: each service's read-only call proves the key, names what it
reaches and whether the domain is verified; a bad key fails and is never printed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from newsletter.doctor import Context, Finding
from newsletter.doctor.credentials import check_credentials
from tests.wire_accounts import RESTRICTED_KEY
from tests.wire_server import DOMAIN, KEY, WireServer

Build = Callable[..., Context]


@pytest.fixture
def wire() -> Iterator[WireServer]:
    with WireServer() as server:
        yield server


def check(context: Build, wire: WireServer, provider: str, key: str = KEY, **overrides: Any) -> dict[str, Finding]:
    extra = {"mailgun_domain": DOMAIN} if provider == "mailgun" else {}
    settings = {"provider": provider, "provider_api_key": key, "provider_base_url": wire.url} | extra | overrides
    ctx = context(**settings)
    return {f.name: f for f in check_credentials(ctx)}


@pytest.mark.parametrize(("provider", "names"), [
    ("postmark", "Postmark server 'Weekly AI Tool Verdicts' (ID 4242)"),
    ("sendgrid", "SendGrid key with mail.send (2 scopes)"),
    ("mailgun", f"Mailgun key reaches domain {DOMAIN}"),
    ("resend", "Resend key with 1 domain(s)"),
])
def test_a_working_key_passes_and_names_what_it_reaches(context: Build, wire: WireServer, provider: str,
                                                        names: str) -> None:
    found = check(context, wire, provider)
    assert found["Provider key"].status == "pass" and found["Provider key"].detail == names
    assert found["Domain at provider"].status in ("pass", "skip")
    assert all(f.status != "fail" for f in found.values()), found


@pytest.mark.parametrize("provider", ["postmark", "sendgrid", "mailgun", "resend"])
def test_a_bad_key_fails_and_is_never_printed(context: Build, wire: WireServer, provider: str) -> None:
    secret = "sk-wrong-0123456789abcdef"
    found = check(context, wire, provider, key=secret)
    assert found["Provider key"].status == "fail" and "refused the key" in found["Provider key"].detail
    assert all(secret not in f.detail + f.fix for f in found.values())


@pytest.mark.parametrize(("provider", "said"), [
    ("sendgrid", "authenticated but not valid yet"), ("mailgun", "unverified at Mailgun"),
    ("resend", "pending at Resend")])
def test_an_unverified_domain_fails(context: Build, wire: WireServer, provider: str, said: str) -> None:
    wire.state.accounts.domains[DOMAIN] = False
    domain = check(context, wire, provider)["Domain at provider"]
    assert domain.status == "fail" and said in domain.detail


def test_a_domain_the_account_does_not_have_fails(context: Build, wire: WireServer) -> None:
    wire.state.accounts.domains = {"other.example.org": True}
    assert "not authenticated" in check(context, wire, "sendgrid")["Domain at provider"].detail
    assert "no domain" in check(context, wire, "mailgun")["Domain at provider"].detail
    assert "not a Resend domain" in check(context, wire, "resend")["Domain at provider"].detail


def test_postmark_checks_the_stream_is_a_broadcast_one(context: Build, wire: WireServer) -> None:
    assert check(context, wire, "postmark", postmark_message_stream="outbound")["Message stream"].status == "warn"
    missing = check(context, wire, "postmark", postmark_message_stream="news")["Message stream"]
    assert missing.status == "fail" and "NEWSLETTER_POSTMARK_MESSAGE_STREAM" in missing.fix


def test_a_sendgrid_key_without_mail_send_fails(context: Build, wire: WireServer) -> None:
    wire.state.accounts.scopes = ["stats.read"]
    key = check(context, wire, "sendgrid")["Provider key"]
    assert key.status == "fail" and "may not send" in key.detail


def test_a_resend_sending_only_key_is_real_but_cannot_show_the_domain(context: Build, wire: WireServer) -> None:
    found = check(context, wire, "resend", key=RESTRICTED_KEY)
    assert found["Provider key"].status == "pass" and found["Domain at provider"].status == "warn"


def test_no_key_and_no_service_fail(context: Build, wire: WireServer) -> None:
    [missing] = check_credentials(context(provider="resend"))
    assert missing.status == "fail" and "NEWSLETTER_PROVIDER_API_KEY" in missing.detail
    [down] = check(context, wire, "resend", provider_base_url="http://127.0.0.1:9").values()
    assert down.status == "fail" and "did not answer" in down.detail


@pytest.mark.parametrize("provider", ["file", "console", "memory"])
def test_local_providers_need_no_account(context: Build, provider: str) -> None:
    [only] = check_credentials(context(provider=provider))
    assert only.status == "skip"
