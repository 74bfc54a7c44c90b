"""Doctor fixtures: a correct zone per provider on a real DNS server, the wire server, a context factory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from newsletter import wiring
from newsletter.clock import ManualClock
from newsletter.config import Settings
from newsletter.doctor import Context
from tests.dns_server import DnsServer
from tests.ses_wire import DKIM_TOKENS

DOMAIN = "news.example.com"
DMARC = f'_dmarc.{DOMAIN}. 300 IN TXT "v=DMARC1; p=quarantine; rua=mailto:dmarc@{DOMAIN}"'
MAIL_FROM = f"mail.{DOMAIN}"  # SES's custom MAIL FROM domain, when a test sets one
KEY = 'v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAtest'
# Each provider's records as its setup pages list them (newsletter/doctor/facts.py), on news.example.com.
ZONES = {
    "postmark": f'''
{DOMAIN}. 300 IN TXT "v=spf1 include:spf.mtasv.net ~all"
20261204000000pm._domainkey.{DOMAIN}. 300 IN TXT "{KEY}"
pm-bounces.{DOMAIN}. 300 IN CNAME pm.mtasv.net.
pm.mtasv.net. 300 IN TXT "v=spf1 ip4:50.31.156.0/24 ~all"
{DMARC}
''',
    "sendgrid": f'''
{DOMAIN}. 300 IN TXT "v=spf1 include:sendgrid.net ~all"
em1234.{DOMAIN}. 300 IN CNAME u1234.wl.sendgrid.net.
s1._domainkey.{DOMAIN}. 300 IN CNAME s1.domainkey.u1234.wl.sendgrid.net.
s2._domainkey.{DOMAIN}. 300 IN CNAME s2.domainkey.u1234.wl.sendgrid.net.
s1.domainkey.u1234.wl.sendgrid.net. 300 IN TXT "{KEY}"
s2.domainkey.u1234.wl.sendgrid.net. 300 IN TXT "{KEY}"
u1234.wl.sendgrid.net. 300 IN A 192.0.2.10
{DMARC}
''',
    "mailgun": f'''
{DOMAIN}. 300 IN TXT "v=spf1 include:mailgun.org ~all"
{DOMAIN}. 300 IN MX 10 mxa.mailgun.org.
{DOMAIN}. 300 IN MX 10 mxb.mailgun.org.
smtp._domainkey.{DOMAIN}. 300 IN TXT "{KEY}"
{DMARC}
''',
    "resend": f'''
send.{DOMAIN}. 300 IN TXT "v=spf1 include:amazonses.com ~all"
send.{DOMAIN}. 300 IN MX 10 feedback-smtp.us-east-1.amazonses.com.
resend._domainkey.{DOMAIN}. 300 IN TXT "{KEY}"
{DMARC}
''',
    "ses": "".join(f"{t}._domainkey.{DOMAIN}. 300 IN CNAME {t}.dkim.amazonses.com.\n" for t in DKIM_TOKENS) + f'''
{MAIL_FROM}. 300 IN MX 10 feedback-smtp.eu-west-1.amazonses.com.
{MAIL_FROM}. 300 IN TXT "v=spf1 include:amazonses.com ~all"
{DMARC}
''',
    "smtp": f'''
{DOMAIN}. 300 IN TXT "v=spf1 mx ~all"
mail._domainkey.{DOMAIN}. 300 IN TXT "{KEY}"
{DMARC}
''',
}
# What each provider needs in settings besides the zone (the selectors and return paths that are per account).
EXTRA: dict[str, dict[str, Any]] = {
    "postmark": {"dkim_selectors": "20261204000000pm"},
    "sendgrid": {"bounce_domain": f"em1234.{DOMAIN}"},
    "mailgun": {"mailgun_domain": DOMAIN, "dkim_selectors": "smtp"},
    "resend": {},
    "ses": {},
    "smtp": {"dkim_selectors": "mail"},
}


def replace(zone: str, old: str, new: str) -> str:
    """``zone`` with one line changed (or dropped, when ``new`` is empty); fails if ``old`` is not in it."""
    assert old in zone, old
    return zone.replace(old, new)


@pytest.fixture
def dns_zone() -> Callable[[str], Any]:
    """Serve zone text on a real DNS server on 127.0.0.1 for the test's duration; returns the server."""
    servers: list[DnsServer] = []

    def serve(records: str) -> DnsServer:
        server = DnsServer(records).__enter__()
        servers.append(server)
        return server

    yield serve
    for server in servers:
        server.__exit__()


@pytest.fixture
def context(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., Context]]:
    """Build a doctor context from setting overrides (``resolver``, ``transport``, ``clock`` taken out first)."""
    built: list[wiring.Wiring] = []

    def build(*, resolver: Any = None, transport: Any = None, clock: Any = None, **overrides: Any) -> Context:
        wired = wiring.build(make_settings(**overrides), clock=clock or ManualClock(), check_schema=False)
        built.append(wired)
        from newsletter.doctor import resolver_for

        return Context(wired, resolver or resolver_for("127.0.0.1:9", timeout=0.5), transport=transport,
                       timeout=5.0)

    yield build
    for wired in built:
        wired.close()
