"""What each provider needs in the sending domain's DNS, and where each fact comes from.

Tags as in ``shared/providers.md``: [V] read in the provider's own documentation (through the ``search`` tool, on
2026-12-04), [2nd] seen only in third-party pages or SDKs, [U] an assumption. Per-account values (Postmark's dated
DKIM selector, SendGrid's numbered ``em…`` return-path host) cannot be known in advance: ``NEWSLETTER_DKIM_SELECTORS``
and ``NEWSLETTER_BOUNCE_DOMAIN`` give them, and win over what is written here.

* Postmark: SPF ``include:spf.mtasv.net`` [2nd: Postmark's own page was not in the corpus; bounce mail of theirs
  shows ``pm.mtasv.net``]. The DKIM selector is dated, ``<YYYYMMDDhhmmss>pm._domainkey`` [2nd], so it must be
  configured. The custom Return-Path is ``pm-bounces.<domain>`` CNAME ``pm.mtasv.net`` [2nd]; it is optional
  (Postmark's own return path is used without it), so its absence is a warning: without it SPF cannot align. SPF
  is looked for there (a CNAME to Postmark carries theirs).
* SendGrid: with automated security (the default) domain authentication gives three CNAMEs [V: "If you choose to use
  Automated Security, SendGrid will provide you with 3 CNAME records", Twilio's domain-authentication API pages]:
  ``em<N>.<domain>`` (the return path, which carries SPF), ``s1._domainkey`` and ``s2._domainkey`` [2nd for the
  names]. Without automated security the SPF include is ``sendgrid.net`` [2nd].
* Mailgun: SPF ``v=spf1 include:mailgun.org ~all`` on the sending domain [V: Mailgun "Domain Verification" page];
  the DKIM TXT's name is shown per domain in the control panel or ``GET /v4/domains/{name}`` [V], commonly
  ``smtp``, ``mx``, ``k1`` or ``pic`` [2nd] — configure it; MX ``mxa.mailgun.org`` / ``mxb.mailgun.org`` to
  receive bounces at the domain [V: "Required for Mailgun to receive and route/store messages"].
* Resend: bounces and SPF live on ``send.<domain>``: MX ``feedback-smtp.<region>.amazonses.com`` and TXT
  ``v=spf1 include:amazonses.com ~all``; DKIM TXT ``resend._domainkey`` [2nd: Resend's DNS guides were found but the
  record table was not in the excerpt; the same three records appear in SES-based services' docs].
* ses: SPF ``include:amazonses.com`` on the custom MAIL FROM domain, whose MX is
  ``feedback-smtp.<region>.amazonses.com``; Easy DKIM's CNAMEs ``<token>._domainkey.<domain>`` →
  ``<token>.dkim.amazonses.com``. The tokens and the MAIL FROM domain are per identity, so they are read from SES's
  ``GetEmailIdentity`` and checked in DNS under Provider (``ses.py`` has the sources and tags); the DNS group checks
  SPF at ``NEWSLETTER_BOUNCE_DOMAIN`` and DKIM at ``NEWSLETTER_DKIM_SELECTORS`` only when they are set.
* smtp: a relay of the operator's own choosing — nothing provider-specific is known; SPF and DMARC are still checked,
  DKIM only with ``NEWSLETTER_DKIM_SELECTORS``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DnsFacts:
    """One provider's DNS needs. ``spf_host`` and ``bounce_host`` are labels before the domain ('' = the domain)."""

    spf_include: str | None  # the include: the SPF record must name; None when nothing is known
    spf_host: str | None  # where that SPF record lives; None when it depends on the account (SendGrid's em<N>)
    dkim_selectors: tuple[str, ...]  # empty: the selector is per account and must be configured
    bounce_host: str | None  # the return-path / bounce domain's host, when the provider uses one
    bounce_needed: bool  # a missing bounce host is a failure (True) or a warning (False)
    notes: str = ""
    by_api: bool = False  # the return path and DKIM records come from the provider's API (checked under Provider)


FACTS: dict[str, DnsFacts] = {
    "postmark": DnsFacts("spf.mtasv.net", "pm-bounces", (), "pm-bounces", False,
                         "Postmark's DKIM selector is dated (…pm): copy it from Sender Signatures → DNS settings"),
    "sendgrid": DnsFacts("sendgrid.net", None, ("s1", "s2"), None, False,
                         "SendGrid's return path is em<N>.<domain>: copy it from Sender Authentication"),
    "mailgun": DnsFacts("mailgun.org", "", (), "", False,
                        "Mailgun's DKIM selector is per domain: copy it from Domain Settings → DNS records"),
    "resend": DnsFacts("amazonses.com", "send", ("resend",), "send", True),
    "ses": DnsFacts("amazonses.com", None, (), None, False, by_api=True),
    "smtp": DnsFacts(None, "", (), None, False),
}
NAMES = {"postmark": "Postmark", "sendgrid": "SendGrid", "mailgun": "Mailgun", "resend": "Resend", "ses": "SES",
         "smtp": "your SMTP relay"}  # as an operator reads them in a sentence


def named(provider: str) -> str:
    """The service's own spelling of its name (``ses`` → SES), for findings."""
    return NAMES.get(provider, provider)


LOCAL_PROVIDERS = frozenset({"file", "console", "memory"})
