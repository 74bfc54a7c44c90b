"""The DNS checks against a real DNS server on 127.0.0.1: each provider's correct zone passes, and each
misconfiguration is found with its fix."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from newsletter.doctor import Context, Finding, resolver_for
from newsletter.doctor.dns_checks import check_dns
from tests.newsletter.doctor.conftest import DMARC, DOMAIN, EXTRA, ZONES, replace

Build = Callable[..., Context]


def findings(context: Build, dns_zone: Callable[[str], Any], provider: str, zone: str | None = None,
             **overrides: Any) -> dict[str, Finding]:
    server = dns_zone(ZONES[provider] if zone is None else zone)
    settings = {"provider": provider, "provider_api_key": "k"} | EXTRA[provider] | overrides
    return {f.name: f for f in check_dns(context(resolver=server.resolver(), **settings))}


@pytest.mark.parametrize("provider", sorted(ZONES))
def test_a_correct_zone_passes_for_every_provider(context: Build, dns_zone: Callable[[str], Any],
                                                  provider: str) -> None:
    found = findings(context, dns_zone, provider)
    assert {f.status for f in found.values()} <= {"pass", "skip"}, found
    assert set(found) == {"SPF", "DKIM", "DMARC", "Bounce domain"}


@pytest.mark.parametrize("provider", ["file", "console", "memory"])
def test_providers_that_send_nothing_say_dns_does_not_apply(context: Build, provider: str) -> None:
    [only] = check_dns(context(provider=provider))
    assert only.status == "skip" and "not applicable" in only.detail


def test_an_spf_record_without_the_providers_include_fails(context: Build, dns_zone: Callable[[str], Any]) -> None:
    zone = replace(ZONES["mailgun"], "include:mailgun.org", "include:_spf.google.com")
    spf = findings(context, dns_zone, "mailgun", zone)["SPF"]
    assert spf.status == "fail" and "does not include mailgun.org" in spf.detail and "include:mailgun.org" in spf.fix


def test_an_include_reached_through_another_include_counts(context: Build, dns_zone: Callable[[str], Any]) -> None:
    zone = replace(ZONES["mailgun"], "include:mailgun.org", "include:_spf.news.example.com")
    zone += f'_spf.{DOMAIN}. 300 IN TXT "v=spf1 include:mailgun.org -all"\n'
    assert findings(context, dns_zone, "mailgun", zone)["SPF"].status == "pass"


def test_no_spf_or_two_spf_records_fail(context: Build, dns_zone: Callable[[str], Any]) -> None:
    missing = replace(ZONES["resend"], 'send.news.example.com. 300 IN TXT "v=spf1 include:amazonses.com ~all"', "")
    assert findings(context, dns_zone, "resend", missing)["SPF"].detail == f"no SPF record at send.{DOMAIN}"
    double = ZONES["smtp"] + f'{DOMAIN}. 300 IN TXT "v=spf1 a -all"\n'
    spf = findings(context, dns_zone, "smtp", double)["SPF"]
    assert spf.status == "fail" and "2 SPF records" in spf.detail


def test_a_missing_dkim_key_fails_and_an_unknown_selector_warns(context: Build, dns_zone: Callable[[str], Any]) -> None:
    zone = replace(ZONES["sendgrid"], f'{"s2.domainkey.u1234.wl.sendgrid.net."} 300 IN TXT', "; ")
    dkim = findings(context, dns_zone, "sendgrid", zone)["DKIM"]
    assert dkim.status == "fail" and f"no key at s2._domainkey.{DOMAIN}" in dkim.detail
    unknown = findings(context, dns_zone, "postmark", dkim_selectors="")["DKIM"]
    assert unknown.status == "warn" and "NEWSLETTER_DKIM_SELECTORS" in unknown.fix


def test_no_dmarc_record_fails(context: Build, dns_zone: Callable[[str], Any]) -> None:
    dmarc = findings(context, dns_zone, "resend", replace(ZONES["resend"], DMARC, ""))["DMARC"]
    assert dmarc.status == "fail" and f"_dmarc.{DOMAIN}" in dmarc.fix


def test_the_organizational_domains_dmarc_record_applies(context: Build, dns_zone: Callable[[str], Any]) -> None:
    zone = replace(ZONES["resend"], DMARC, '_dmarc.example.com. 300 IN TXT "v=DMARC1; p=reject; sp=quarantine"')
    dmarc = findings(context, dns_zone, "resend", zone)["DMARC"]
    assert dmarc.status == "pass" and "p=quarantine" in dmarc.detail  # sp= is the policy for subdomains


def test_p_none_only_monitors_and_warns(context: Build, dns_zone: Callable[[str], Any]) -> None:
    dmarc = findings(context, dns_zone, "resend", replace(ZONES["resend"], "p=quarantine", "p=none"))["DMARC"]
    assert dmarc.status == "warn" and "p=quarantine" in dmarc.fix


def test_a_record_without_a_policy_fails(context: Build, dns_zone: Callable[[str], Any]) -> None:
    dmarc = findings(context, dns_zone, "resend", replace(ZONES["resend"], " p=quarantine;", ""))["DMARC"]
    assert dmarc.status == "fail" and "no valid policy" in dmarc.detail


def test_strict_alignment_with_a_subdomain_signing_fails(context: Build, dns_zone: Callable[[str], Any]) -> None:
    mg = f"mg.{DOMAIN}"
    zone = (replace(ZONES["mailgun"], "p=quarantine;", "p=reject; adkim=s; aspf=s;")
            .replace(f"\n{DOMAIN}. 300 IN", f"\n{mg}. 300 IN")
            .replace(f"smtp._domainkey.{DOMAIN}", f"smtp._domainkey.{mg}"))
    dmarc = findings(context, dns_zone, "mailgun", zone, mailgun_domain=mg)["DMARC"]
    assert dmarc.status == "fail" and f"DKIM signs for {mg} (adkim=s)" in dmarc.detail and "adkim=r" in dmarc.fix
    relaxed = findings(context, dns_zone, "mailgun", zone.replace("adkim=s; aspf=s;", ""), mailgun_domain=mg)
    assert relaxed["DMARC"].status == "pass" and "DKIM and SPF align" in relaxed["DMARC"].detail


def test_a_bounce_domain_without_mx_fails_where_the_provider_needs_it(context: Build,
                                                                     dns_zone: Callable[[str], Any]) -> None:
    zone = replace(ZONES["resend"], "send.news.example.com. 300 IN MX 10 feedback-smtp.us-east-1.amazonses.com.", "")
    bounce = findings(context, dns_zone, "resend", zone)["Bounce domain"]
    assert bounce.status == "fail" and f"send.{DOMAIN} has no MX" in bounce.detail
    optional = replace(ZONES["postmark"], "pm-bounces.news.example.com. 300 IN CNAME pm.mtasv.net.", "")
    postmark = findings(context, dns_zone, "postmark", optional)
    assert postmark["Bounce domain"].status == "warn" and postmark["SPF"].status == "warn"


def test_a_resolver_that_does_not_answer_is_said_apart_from_a_missing_record(context: Build) -> None:
    found = check_dns(context(provider="resend", provider_api_key="k", resolver=resolver_for("127.0.0.1:9",
                                                                                              timeout=0.3)))
    assert {f.status for f in found} == {"fail"} and all("could not ask DNS" in f.detail for f in found)
    assert found[0].detail == "could not ask DNS: no answer in time for send.news.example.com CNAME from 127.0.0.1:9"
