"""The sending domain's DNS: SPF with the provider's include, DKIM selectors, DMARC policy and alignment, bounces.

The domain is ``NEWSLETTER_FROM_ADDRESS``'s (Mailgun: ``NEWSLETTER_MAILGUN_DOMAIN`` signs and bounces, when set).
Per-provider facts and how sure each is: ``facts.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import dns.resolver

from newsletter.config import Settings
from newsletter.doctor import dns_lookup as look
from newsletter.doctor.context import Context
from newsletter.doctor.facts import FACTS, LOCAL_PROVIDERS, DnsFacts, named
from newsletter.doctor.findings import Finding, failed, passed, skipped, warned

MAX_LOOKUPS = 10  # RFC 7208 §4.6.4: more DNS-querying terms than this is a permanent error at the receiver


@dataclass(frozen=True, slots=True)
class Domains:
    """The names the checks look at: From's domain, the DKIM signing domain, the SPF (return-path) domain."""

    sender: str
    signing: str
    spf: str
    spf_known: bool  # False when the return path is per account and unset: a missing SPF there is only a warning
    bounce: str | None


def domains_for(settings: Settings, facts: DnsFacts) -> Domains:
    """Where each record should be, from settings and the provider's facts."""
    sender = settings.sender_domain.lower()
    signing = (settings.mailgun_domain or sender).lower() if settings.provider == "mailgun" else sender
    bounce = settings.bounce_domain or (_join(facts.bounce_host, signing) if facts.bounce_host is not None else None)
    if settings.bounce_domain:
        spf, known = settings.bounce_domain, True
    elif facts.spf_host is None:
        spf, known = signing, False
    else:
        spf, known = _join(facts.spf_host, signing), True
    return Domains(sender, signing, spf.lower(), known, bounce.lower() if bounce else None)


def _join(host: str, domain: str) -> str:
    return f"{host}.{domain}" if host else domain


def check_dns(ctx: Context) -> list[Finding]:
    """Every DNS finding for the configured provider; one 'not applicable' for providers that send nothing."""
    provider = ctx.settings.provider
    if provider in LOCAL_PROVIDERS:
        return [skipped("DNS", f"not applicable: the {provider} provider hands mail to no one")]
    facts = FACTS[provider]
    where = domains_for(ctx.settings, facts)
    checks: list[Callable[[dns.resolver.Resolver, Settings, DnsFacts, Domains], Finding]] = [
        spf, dkim, dmarc, bounce]
    findings = []
    for check in checks:
        name = check.__name__.upper() if check is not bounce else "Bounce domain"
        try:
            findings.append(check(ctx.resolver, ctx.settings, facts, where))
        except look.DnsUnreachable as exc:
            findings.append(failed(name, f"could not ask DNS: {exc}",
                                   "check the machine's resolver (or --nameserver) and its network"))
    return findings


def spf(resolver: dns.resolver.Resolver, settings: Settings, facts: DnsFacts, where: Domains) -> Finding:
    """One SPF record at the return-path domain, naming the provider's include (directly or through includes)."""
    if facts.by_api and not settings.bounce_domain:
        return skipped("SPF", f"checked under Provider: {named(settings.provider)} names the return path (its "
                              "MAIL FROM domain) per identity")
    alias = look.cname(resolver, where.spf)
    if alias and where.spf != where.signing:
        return passed("SPF", f"{where.spf} is an alias of {alias}: the provider publishes its SPF")
    records = [r for r in look.txt(resolver, where.spf) if r.lower().startswith("v=spf1")]
    # The From domain's own SPF, a configured return path and Resend's send.<domain> are needed; Postmark's custom
    # return path is optional (SPF then passes for Postmark's domain, unaligned) and SendGrid's em<N> is unknown.
    needed = where.spf == where.signing or bool(settings.bounce_domain) or facts.bounce_needed
    bad = failed if where.spf_known and needed else warned
    if not records:
        fix = f'add TXT {where.spf} "v=spf1 include:{facts.spf_include or "<your relay>"} ~all"'
        if not where.spf_known:
            fix = f"set NEWSLETTER_BOUNCE_DOMAIN to the return-path host the provider gave you, or {fix}"
        return bad("SPF", f"no SPF record at {where.spf}", fix)
    if len(records) > 1:
        return failed("SPF", f"{len(records)} SPF records at {where.spf}: receivers treat that as an error",
                      "merge them into one v=spf1 record")
    record = records[0]
    if record.split()[-1] in ("+all", "all"):
        return failed("SPF", f"{where.spf} allows every server on the Internet ({record})", "end it with ~all or -all")
    if facts.spf_include is None:
        return passed("SPF", f"{where.spf}: {record}")
    found, lookups = _includes(resolver, record)
    if facts.spf_include not in found:
        return bad("SPF", f"{where.spf}'s SPF does not include {facts.spf_include}: {record}",
                   f"add include:{facts.spf_include} before the all at the end")
    if lookups > MAX_LOOKUPS:
        return failed("SPF", f"{where.spf}'s SPF needs {lookups} DNS lookups; receivers stop at {MAX_LOOKUPS}",
                      "flatten or drop includes")
    return passed("SPF", f"{where.spf} includes {facts.spf_include}")


def _includes(resolver: dns.resolver.Resolver, record: str, depth: int = 0) -> tuple[set[str], int]:
    """The domains ``record`` includes (following include: and redirect= three levels deep) and its lookup count."""
    found: set[str] = set()
    lookups = 0
    for term in record.split()[1:]:
        bare = term.lstrip("+-~?").lower()
        if bare.startswith(("a", "mx", "ptr", "exists:")) and not bare.startswith("all"):
            lookups += 1
        for prefix in ("include:", "redirect="):
            if bare.startswith(prefix):
                target = bare.removeprefix(prefix)
                found.add(target)
                lookups += 1
                if depth < 3:
                    for inner in (r for r in look.txt(resolver, target) if r.lower().startswith("v=spf1")):
                        more, count = _includes(resolver, inner, depth + 1)
                        found |= more
                        lookups += count
    return found, lookups


def dkim(resolver: dns.resolver.Resolver, settings: Settings, facts: DnsFacts, where: Domains) -> Finding:
    """Every DKIM selector the provider signs with has a public key at ``<selector>._domainkey.<domain>``."""
    selectors = settings.dkim_selector_names or facts.dkim_selectors
    if facts.by_api and not selectors:
        return skipped("DKIM", f"checked under Provider: {named(settings.provider)} names its DKIM records per "
                               "identity")
    if not selectors:
        hint = f" ({facts.notes})" if facts.notes else ""
        return warned("DKIM", f"no DKIM selector known for {named(settings.provider)}{hint}",
                      "set NEWSLETTER_DKIM_SELECTORS to the selector(s) your provider shows, comma-separated")
    missing, revoked = [], []
    for selector in selectors:
        name = f"{selector}._domainkey.{where.signing}"
        keys = [look.tags(r) for r in look.txt(resolver, name)]
        if not keys:
            missing.append(name)
        elif not any(key.get("p") for key in keys):
            revoked.append(name)
    if missing or revoked:
        detail = "; ".join([*(f"no key at {n}" for n in missing), *(f"empty (revoked) key at {n}" for n in revoked)])
        return failed("DKIM", detail, "publish the DKIM record(s) exactly as the provider shows them")
    return passed("DKIM", f"key found for selector(s) {', '.join(selectors)} on {where.signing}")


def dmarc(resolver: dns.resolver.Resolver, settings: Settings, facts: DnsFacts, where: Domains) -> Finding:
    """A DMARC record with a policy, whose alignment mode lets DKIM or SPF align with the From domain."""
    found = _dmarc_record(resolver, where.sender)
    if found is None:
        return failed("DMARC", f"no DMARC record at _dmarc.{where.sender}",
                      f'add TXT _dmarc.{where.sender} "v=DMARC1; p=none; rua=mailto:dmarc@{where.sender}" '
                      "(Gmail and Yahoo require one of bulk senders)")
    at, fields = found
    policy = fields.get("sp", fields.get("p")) if at != where.sender else fields.get("p")
    if policy not in ("none", "quarantine", "reject"):
        return failed("DMARC", f"_dmarc.{at} has no valid policy (p={fields.get('p')})",
                      "set p=none, p=quarantine or p=reject")
    adkim, aspf = fields.get("adkim", "r"), fields.get("aspf", "r")
    dkim_ok = _aligned(adkim, where.signing, where.sender)
    spf_ok = where.spf_known and _aligned(aspf, where.spf, where.sender)
    if not (dkim_ok or spf_ok):
        return failed("DMARC", f"nothing can align with {where.sender}: DKIM signs for {where.signing} "
                      f"(adkim={adkim}), the return path is {where.spf} (aspf={aspf})",
                      "use relaxed alignment (adkim=r), or sign and send from the From domain itself")
    aligns = " and ".join(x for x, ok in (("DKIM", dkim_ok), ("SPF", spf_ok)) if ok)
    verb = "align" if dkim_ok and spf_ok else "aligns"
    detail = f"_dmarc.{at}: p={policy}, adkim={adkim}, aspf={aspf}; {aligns} {verb} with {where.sender}"
    if policy == "none":
        return warned("DMARC", detail, "p=none only monitors: move to p=quarantine once the reports are clean")
    return passed("DMARC", detail)


def _dmarc_record(resolver: dns.resolver.Resolver, domain: str) -> tuple[str, dict[str, str]] | None:
    """The DMARC record for ``domain``: its own, else its organizational domain's (RFC 7489 §6.6.3)."""
    for at in dict.fromkeys((domain, look.organizational(domain))):
        records = [r for r in look.txt(resolver, f"_dmarc.{at}") if r.replace(" ", "").lower().startswith("v=dmarc1")]
        if len(records) == 1:
            return at, look.tags(records[0])
    return None


def _aligned(mode: str, domain: str, sender: str) -> bool:
    if mode == "s":
        return domain == sender
    return look.organizational(domain) == look.organizational(sender)


def bounce(resolver: dns.resolver.Resolver, settings: Settings, facts: DnsFacts, where: Domains) -> Finding:
    """The return-path / bounce domain, where the provider uses one, takes mail (MX) or at least resolves."""
    name = "Bounce domain"
    if where.bounce is None and facts.by_api:
        return skipped(name, f"checked under Provider: {named(settings.provider)} names the bounce domain (its MAIL "
                             "FROM domain) per identity")
    if where.bounce is None:
        return skipped(name, f"{named(settings.provider)} needs no bounce domain of yours "
                             "(set NEWSLETTER_BOUNCE_DOMAIN to check one)")
    hosts = look.mail_hosts(resolver, where.bounce)
    if hosts:
        return passed(name, f"{where.bounce} takes mail at {', '.join(hosts)}")
    alias = look.cname(resolver, where.bounce)
    if alias or look.has_address(resolver, where.bounce):
        return passed(name, f"{where.bounce} resolves" + (f" (alias of {alias})" if alias else ""))
    bad = failed if facts.bounce_needed else warned
    return bad(name, f"{where.bounce} has no MX, A or CNAME record: bounces cannot come back there",
               "add the MX (or CNAME) record the provider shows for the return path")
