"""SES checks against the wire server's SigV4-checked GetAccount and GetEmailIdentity and a real DNS server: a
correct account passes and names its quota; the sandbox, a paused account, an unverified or unknown domain, a
missing DKIM CNAME and a MAIL FROM domain without SES's MX each fail with the fix; the secret is never printed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from newsletter.doctor import Context, Finding
from newsletter.doctor.credentials import check_credentials
from newsletter.doctor.dns_checks import check_dns
from newsletter.doctor.ses import identity
from newsletter.doctor.webhooks import check_webhooks
from newsletter.providers.sigv4 import SigV4
from tests.newsletter.doctor.conftest import MAIL_FROM, ZONES, replace
from tests.ses_wire import DKIM_TOKENS, KEY_ID, REGION, SECRET
from tests.wire_server import DOMAIN, WireServer

Build = Callable[..., Context]
Zone = Callable[[str], Any]
TOPIC = "arn:aws:sns:eu-west-1:123456789012:ses-events"


@pytest.fixture
def wire() -> Iterator[WireServer]:
    with WireServer() as server:
        yield server


def check(context: Build, dns_zone: Zone, wire: WireServer, zone: str = ZONES["ses"],
          **overrides: Any) -> dict[str, Finding]:
    settings = {"provider": "ses", "ses_region": REGION, "ses_access_key_id": KEY_ID,
                "ses_secret_access_key": SECRET, "provider_base_url": wire.url} | overrides
    ctx = context(resolver=dns_zone(zone).resolver(), **settings)
    return {f.name: f for f in check_credentials(ctx)}


def test_a_working_key_names_the_account_and_the_verified_domain(context: Build, dns_zone: Zone,
                                                                 wire: WireServer) -> None:
    found = check(context, dns_zone, wire)
    assert found["Provider key"].detail == (f"SES account in {REGION}: production, 50000 per 24 h (120 sent), "
                                            "14 per second")
    assert found["SES account"].status == "pass"
    assert found["Domain at provider"].detail == f"{DOMAIN} is verified for sending at SES"
    assert found["SES DKIM records"].status == "pass" and "3 CNAME(s)" in found["SES DKIM records"].detail
    assert found["MAIL FROM domain"].status == "skip"
    assert all(f.status in ("pass", "skip") for f in found.values()), found


def test_a_wrong_secret_fails_and_is_never_printed(context: Build, dns_zone: Zone, wire: WireServer) -> None:
    found = check(context, dns_zone, wire, ses_secret_access_key="not-the-wire-secret-at-all")
    key = found["Provider key"]
    assert key.status == "fail" and "SignatureDoesNotMatch" in key.detail and "NEWSLETTER_SES_" in key.fix
    assert all("not-the-wire-secret-at-all" not in f.detail + f.fix for f in found.values())


def test_a_send_only_key_is_accepted_with_warnings_naming_the_read_permissions(context: Build, dns_zone: Zone,
                                                                              wire: WireServer) -> None:
    wire.state.accounts.ses_send_only = True
    found = check(context, dns_zone, wire)
    assert found["Provider key"].status == "pass" and "accepted the key's signature" in found["Provider key"].detail
    assert found["SES account"].status == "warn" and "ses:GetAccount" in found["SES account"].fix
    assert not any(f.status == "fail" for f in found.values()), found


def test_missing_settings_fail_naming_them(context: Build, dns_zone: Zone, wire: WireServer) -> None:
    key = check(context, dns_zone, wire, ses_access_key_id=None)["Provider key"]
    assert key.status == "fail" and "NEWSLETTER_SES_ACCESS_KEY_ID" in key.detail


def test_the_sandbox_and_a_paused_account_fail(context: Build, dns_zone: Zone, wire: WireServer) -> None:
    wire.state.accounts.ses_production = False
    account = check(context, dns_zone, wire)["SES account"]
    assert account.status == "fail" and "sandbox" in account.detail and "production access" in account.fix
    wire.state.accounts.ses_sending = False
    assert "paused" in check(context, dns_zone, wire)["SES account"].detail


def test_an_unverified_or_unknown_domain_fails(context: Build, dns_zone: Zone, wire: WireServer) -> None:
    wire.state.accounts.domains[DOMAIN] = False
    domain = check(context, dns_zone, wire)["Domain at provider"]
    assert domain.status == "fail" and "not verified for sending" in domain.detail
    del wire.state.accounts.domains[DOMAIN]
    domain = check(context, dns_zone, wire)["Domain at provider"]
    assert domain.status == "fail" and "not an SES identity" in domain.detail and "Create identity" in domain.fix


def test_a_missing_dkim_cname_fails_naming_it(context: Build, dns_zone: Zone, wire: WireServer) -> None:
    token = DKIM_TOKENS[1]
    zone = replace(ZONES["ses"], f"{token}._domainkey.{DOMAIN}. 300 IN CNAME {token}.dkim.amazonses.com.", "")
    dkim = check(context, dns_zone, wire, zone)["SES DKIM records"]
    assert dkim.status == "fail"
    assert dkim.detail == f"{token}._domainkey.{DOMAIN} is not a CNAME to {token}.dkim.amazonses.com"
    wire.state.accounts.ses_dkim = "PENDING"
    assert check(context, dns_zone, wire)["SES DKIM records"].status == "warn"


def test_a_custom_mail_from_needs_ses_mx_and_spf(context: Build, dns_zone: Zone, wire: WireServer) -> None:
    wire.state.accounts.ses_mail_from = MAIL_FROM
    assert check(context, dns_zone, wire)["MAIL FROM domain"].status == "pass"
    zone = replace(ZONES["ses"], f"{MAIL_FROM}. 300 IN MX 10 feedback-smtp.eu-west-1.amazonses.com.", "")
    mail_from = check(context, dns_zone, wire, zone)["MAIL FROM domain"]
    assert mail_from.status == "fail" and mail_from.fix == f'add MX {MAIL_FROM} "10 feedback-smtp.{REGION}.amazonses.com"'


def test_dns_leaves_ses_records_to_the_provider_checks_unless_configured(context: Build, dns_zone: Zone) -> None:
    ctx = context(resolver=dns_zone(ZONES["ses"]).resolver(), provider="ses")
    found = {f.name: f for f in check_dns(ctx)}
    assert [found[n].status for n in ("SPF", "DKIM", "DMARC", "Bounce domain")] == ["skip", "skip", "pass", "skip"]
    assert "under Provider" in found["DKIM"].detail
    ctx = context(resolver=dns_zone(ZONES["ses"]).resolver(), provider="ses", bounce_domain=MAIL_FROM)
    assert {f.name: f for f in check_dns(ctx)}["SPF"].detail == f"{MAIL_FROM} includes amazonses.com"


def test_ses_webhooks_need_the_sns_topic(context: Build) -> None:
    [secret] = check_webhooks(context(provider="ses"))
    assert secret.status == "fail" and "NEWSLETTER_SES_SNS_TOPIC_ARNS" in secret.detail and "SNS topic" in secret.fix
    found = check_webhooks(context(provider="ses", ses_sns_topic_arns=TOPIC))
    assert found[0].status == "pass" and found[0].detail.endswith("/webhooks/ses")


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    running = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    running.start()
    host, port = running.get_host_and_port()
    yield f"http://{host}:{port}"
    running.stop()


def test_get_email_identity_as_moto_answers_it(moto_url: str, dns_zone: Zone) -> None:
    """moto's SES v2 (which has no GetAccount) answers our signed GetEmailIdentity: a new identity is unverified and
    has no DKIM yet, an unknown one is NotFoundException."""
    boto3.client("sesv2", endpoint_url=moto_url, region_name=REGION, aws_access_key_id="setup",
                 aws_secret_access_key="setup").create_email_identity(EmailIdentity=DOMAIN)
    resolver = dns_zone(ZONES["ses"]).resolver()
    auth = SigV4(access_key_id="AKIDMOTO", secret_access_key="moto-secret", region=REGION)
    with httpx.Client(base_url=moto_url, auth=auth) as client:
        new = {f.name: f for f in identity(resolver, client.get(f"/v2/email/identities/{DOMAIN}"), DOMAIN, REGION)}
        unknown = identity(resolver, client.get("/v2/email/identities/other.example.org"), "other.example.org", REGION)
    assert new["Domain at provider"].status == "fail" and "not verified for sending" in new["Domain at provider"].detail
    assert new["SES DKIM records"].status == "fail" and "Easy DKIM" in new["SES DKIM records"].fix
    assert [f.detail for f in unknown] == [f"other.example.org is not an SES identity in {REGION}"]
