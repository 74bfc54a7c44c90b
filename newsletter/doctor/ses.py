"""Amazon SES: two read-only SES v2 calls, signed with SigV4 as the provider signs, and the DNS records they name.

Shapes from botocore's ``sesv2/2019-09-27/service-2.json`` (read from the installed botocore 1.43, [V model]):

* ``GetAccount`` ``GET /v2/email/account`` → ``SendingEnabled``, ``ProductionAccessEnabled`` (false: the sandbox,
  "you can only send email to verified identities"), ``EnforcementStatus`` (``HEALTHY`` / ``PROBATION`` /
  ``SHUTDOWN``), ``SendQuota {Max24HourSend, MaxSendRate, SentLast24Hours}``.
* ``GetEmailIdentity`` ``GET /v2/email/identities/{EmailIdentity}`` → ``VerifiedForSendingStatus``,
  ``VerificationStatus``, ``DkimAttributes {Status, Tokens, SigningAttributesOrigin}`` and ``MailFromAttributes
  {MailFromDomain, MailFromDomainStatus}``; an unknown identity is ``NotFoundException`` (404) [V: moto 5.2 answers
  the same path so; the status code is 2nd].

The records, per facts.py's tags: Easy DKIM's three tokens are CNAMEs ``<token>._domainkey.<domain>`` →
``<token>.dkim.amazonses.com`` [V: the SES API reference's VerifyDomainDkim text, read through paws' copy of it];
with BYODKIM (origin ``EXTERNAL``) the token is the selector of a TXT key [V model's Tokens documentation]. A custom
MAIL FROM domain needs an MX to ``feedback-smtp.<region>.amazonses.com`` and an SPF TXT with
``include:amazonses.com`` [V that both are needed: SES Developer Guide "Using a custom MAIL FROM domain"; the values
2nd: dmarc.wiki and vendors' setup pages]. Without one SES uses its own amazonses.com return path, whose SPF passes
but cannot align, so DMARC rests on DKIM [V: SES Developer Guide "Authenticating Email with SPF"].

The access key's id and secret never appear in a finding.
"""

from __future__ import annotations

from typing import Any

import dns.resolver
import httpx

from newsletter.doctor import dns_lookup as look
from newsletter.doctor.context import Context
from newsletter.doctor.findings import Finding, failed, passed, skipped, warned
from newsletter.errors import ConfigError
from newsletter.providers.ses import AUTH_CODES, error_code, error_message
from newsletter.providers.sigv4 import SigV4

KEY, ACCOUNT, DOMAIN, DKIM, MAIL_FROM = ("Provider key", "SES account", "Domain at provider", "SES DKIM records",
                                         "MAIL FROM domain")
READ_ONLY = "allow the IAM user ses:GetAccount and ses:GetEmailIdentity (read-only) so the doctor can check"


def check_ses(ctx: Context) -> list[Finding]:
    """The key signs (GetAccount names the account's state and quota); the domain identity is verified, its DKIM
    CNAMEs and custom MAIL FROM domain are in DNS."""
    try:
        region, key_id, secret, token = ctx.settings.require_ses()
    except ConfigError as exc:
        return [failed(KEY, str(exc), "set NEWSLETTER_SES_REGION, NEWSLETTER_SES_ACCESS_KEY_ID and "
                                      "NEWSLETTER_SES_SECRET_ACCESS_KEY to an IAM user's access key")]
    base = str(ctx.settings.provider_base_url or f"https://email.{region}.amazonaws.com").rstrip("/")
    auth = SigV4(access_key_id=key_id, secret_access_key=secret, region=region, session_token=token)
    with httpx.Client(base_url=base, transport=ctx.provider_transport, timeout=ctx.timeout, auth=auth,
                      headers={"Accept": "application/json"}) as client:
        try:
            found = _account(client.get("/v2/email/account"), region)
            if found[0].status == "fail":
                return found
            domain = ctx.settings.sender_domain.lower()
            return found + identity(ctx.resolver, client.get(f"/v2/email/identities/{domain}"), domain, region)
        except httpx.HTTPError as exc:
            where = ("NEWSLETTER_PROVIDER_BASE_URL" if ctx.settings.provider_base_url else
                     "NEWSLETTER_SES_REGION (SES answers at email.<region>.amazonaws.com)")
            return [failed(KEY, f"{base} did not answer: {type(exc).__name__}", f"check the network and {where}")]


def _body(response: httpx.Response) -> dict[str, Any]:
    """The JSON object SES answered with; empty when it answered something else (a proxy's page, say)."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _denied(response: httpx.Response) -> bool:
    """The signature was accepted but the key's policy does not allow this read-only call."""
    return response.status_code in (400, 403) and error_code(response) in ("AccessDeniedException", "AccessDenied")


def _account(response: httpx.Response, region: str) -> list[Finding]:
    if _denied(response):
        return [passed(KEY, f"SES accepted the key's signature in {region}"),
                warned(ACCOUNT, "the key may not call GetAccount, so the sending status is unknown", READ_ONLY)]
    if response.status_code != 200:
        code = error_code(response)
        why = "the region or the key" if code in AUTH_CODES or response.status_code in (401, 403) else "the request"
        return [failed(KEY, f"SES refused {why} (HTTP {response.status_code} {code}: {error_message(response)})",
                       "put a valid IAM access key in NEWSLETTER_SES_ACCESS_KEY_ID and NEWSLETTER_SES_SECRET_ACCESS_KEY"
                       ", for NEWSLETTER_SES_REGION")]
    body = _body(response)
    quota = body.get("SendQuota") or {}
    state = "production" if body.get("ProductionAccessEnabled") else "sandbox"
    limits = (f"{quota.get('Max24HourSend', 0):.0f} per 24 h ({quota.get('SentLast24Hours', 0):.0f} sent), "
              f"{quota.get('MaxSendRate', 0):g} per second")
    found = [passed(KEY, f"SES account in {region}: {state}, {limits}")]
    enforcement = body.get("EnforcementStatus") or "HEALTHY"
    if not body.get("SendingEnabled", True) or enforcement == "SHUTDOWN":
        found.append(failed(ACCOUNT, f"sending is paused for this account (enforcement {enforcement})",
                            "read the notice in the SES console's Account dashboard and ask AWS to resume sending"))
    elif state == "sandbox":
        found.append(failed(ACCOUNT, f"the account is in the SES sandbox in {region}: it sends only to verified "
                                     "addresses, at most 200 a day", "request production access in the SES console "
                                     "(Account dashboard → Request production access)"))
    elif enforcement == "PROBATION":
        found.append(warned(ACCOUNT, "the account is on probation: AWS saw high bounce or complaint rates",
                            "read the SES Reputation metrics and clean the list before the next send"))
    else:
        found.append(passed(ACCOUNT, f"sending enabled, enforcement {enforcement}"))
    return found


def identity(resolver: dns.resolver.Resolver, response: httpx.Response, domain: str, region: str) -> list[Finding]:
    """GetEmailIdentity's answer as findings: verified for sending, then its DKIM and MAIL FROM records in DNS."""
    if _denied(response):
        return [warned(DOMAIN, "the key may not call GetEmailIdentity, so verification is unknown", READ_ONLY)]
    if response.status_code == 404:
        return [failed(DOMAIN, f"{domain} is not an SES identity in {region}", "create a domain identity for it "
                               "(SES console → Verified identities → Create identity) in NEWSLETTER_SES_REGION")]
    if response.status_code != 200:
        return [failed(DOMAIN, f"GetEmailIdentity answered HTTP {response.status_code} {error_code(response)}",
                       "read the message, then run the doctor again")]
    body = _body(response)
    if body.get("VerifiedForSendingStatus"):
        found = [passed(DOMAIN, f"{domain} is verified for sending at SES")]
    else:
        found = [failed(DOMAIN, f"{domain} is not verified for sending at SES (verification "
                                f"{body.get('VerificationStatus', 'unknown')})", "publish the DKIM records below; "
                                "SES verifies the domain once it sees them (it looks for up to 72 hours)")]
    try:
        found.append(_dkim(resolver, body.get("DkimAttributes") or {}, domain))
        found.append(_mail_from(resolver, body.get("MailFromAttributes") or {}, region))
    except look.DnsUnreachable as exc:
        found.append(failed(DKIM, f"could not ask DNS: {exc}", "check the machine's resolver (or --nameserver)"))
    return found


def _dkim(resolver: dns.resolver.Resolver, attributes: dict[str, Any], domain: str) -> Finding:
    """Every token's record is in DNS (Easy DKIM: a CNAME to SES; BYODKIM: a TXT key), and SES has seen them."""
    tokens = [str(t) for t in attributes.get("Tokens") or []]
    status = attributes.get("Status", "NOT_STARTED")
    if not tokens:
        return failed(DKIM, f"SES has no DKIM set up for {domain} (status {status})",
                      "turn on Easy DKIM for the identity in the SES console, then publish its three CNAMEs")
    own = attributes.get("SigningAttributesOrigin") == "EXTERNAL"
    wrong = []
    for token in tokens:
        name = f"{token}._domainkey.{domain}"
        if own:
            if not look.txt(resolver, name):
                wrong.append(f"no TXT key at {name}")
        elif (look.cname(resolver, name) or "").lower() != f"{token}.dkim.amazonses.com":
            wrong.append(f"{name} is not a CNAME to {token}.dkim.amazonses.com")
    if wrong:
        return failed(DKIM, "; ".join(wrong), "publish the DKIM records exactly as the SES console shows them "
                                              "(Verified identities → the domain → Authentication)")
    if status != "SUCCESS":
        return warned(DKIM, f"the records are in DNS; SES's DKIM status is {status}",
                      "SES checks for up to 72 hours: run the doctor again later")
    return passed(DKIM, f"{len(tokens)} {'TXT key' if own else 'CNAME'}(s) in DNS, SES signs for {domain}")


def _mail_from(resolver: dns.resolver.Resolver, attributes: dict[str, Any], region: str) -> Finding:
    """A custom MAIL FROM domain, when set, routes bounces to SES (MX) and names SES in its SPF."""
    host = str(attributes.get("MailFromDomain") or "").lower()
    if not host:
        return skipped(MAIL_FROM, "none set: SES's own return path passes SPF without aligning; DMARC aligns "
                                  "through DKIM (set a custom MAIL FROM domain to align SPF too)")
    feedback = f"feedback-smtp.{region}.amazonses.com"
    wrong = []
    if feedback not in look.mail_hosts(resolver, host):
        wrong.append(f'add MX {host} "10 {feedback}"')
    if not any(r.lower().startswith("v=spf1") and "include:amazonses.com" in r.lower()
               for r in look.txt(resolver, host)):
        wrong.append(f'add TXT {host} "v=spf1 include:amazonses.com ~all"')
    status = attributes.get("MailFromDomainStatus", "PENDING")
    if wrong:
        return failed(MAIL_FROM, f"{host} is missing SES's records (status {status}): bounces fall back to "
                                 "amazonses.com or are refused", "; ".join(wrong))
    if status != "SUCCESS":
        return warned(MAIL_FROM, f"{host}'s records are in DNS; SES's status is {status}", "run the doctor again later")
    return passed(MAIL_FROM, f"{host} takes bounces at {feedback} and its SPF includes amazonses.com")
