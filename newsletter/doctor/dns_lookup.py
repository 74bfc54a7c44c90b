"""Small DNS questions with dnspython: TXT strings, CNAME targets, whether a name takes mail or has an address.

"No such name" and "no record of that type" are answers (empty); a resolver that does not answer is
``DnsUnreachable``, so a check can tell "your record is missing" from "I could not ask".
"""

from __future__ import annotations

import dns.exception
import dns.resolver

from newsletter.errors import NewsletterError


class DnsUnreachable(NewsletterError):
    """The resolver gave no answer (timeout, no server reachable, SERVFAIL)."""


def _answer(resolver: dns.resolver.Resolver, name: str, kind: str) -> list[object]:
    try:
        return list(resolver.resolve(name, kind, search=False))
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except (dns.resolver.NoNameservers, dns.resolver.LifetimeTimeout, dns.exception.Timeout) as exc:
        # dnspython's own text repeats itself per server and try: name the servers asked and how it failed.
        asked = ", ".join(f"{server}:{resolver.port}" for server in resolver.nameservers) or "no nameserver"
        how = "no answer in time" if not isinstance(exc, dns.resolver.NoNameservers) else "every server failed"
        raise DnsUnreachable(f"{how} for {name} {kind} from {asked}") from exc


def txt(resolver: dns.resolver.Resolver, name: str) -> list[str]:
    """Every TXT record at ``name`` (CNAMEs followed), each one's strings joined as RFC 7208 says."""
    return [b"".join(record.strings).decode("utf-8", "replace")  # type: ignore[attr-defined]
            for record in _answer(resolver, name, "TXT")]


def cname(resolver: dns.resolver.Resolver, name: str) -> str | None:
    """Where ``name`` is an alias to, without its final dot; None when it is no alias."""
    found = _answer(resolver, name, "CNAME")
    return str(found[0].target).rstrip(".") if found else None  # type: ignore[attr-defined]


def mail_hosts(resolver: dns.resolver.Resolver, name: str) -> list[str]:
    """The MX hosts of ``name``, best first."""
    records = sorted(_answer(resolver, name, "MX"), key=lambda r: r.preference)  # type: ignore[attr-defined]
    return [str(r.exchange).rstrip(".") for r in records]  # type: ignore[attr-defined]


def has_address(resolver: dns.resolver.Resolver, name: str) -> bool:
    """Whether ``name`` has an A or AAAA record (CNAMEs followed)."""
    return bool(_answer(resolver, name, "A") or _answer(resolver, name, "AAAA"))


def organizational(domain: str) -> str:
    """The domain's last two labels: a stand-in for DMARC's organizational domain.

    Assumption: no public-suffix list is consulted, so ``example.co.uk`` comes out as ``co.uk``; the DMARC lookup
    tries the exact domain first, which covers such domains when they publish their own record.
    """
    labels = domain.rstrip(".").split(".")
    return ".".join(labels[-2:])


def tags(record: str) -> dict[str, str]:
    """A DMARC or DKIM record's ``tag=value`` pairs, keys lower-cased."""
    pairs = (part.split("=", 1) for part in record.split(";") if "=" in part)
    return {key.strip().lower(): value.strip() for key, value in pairs}
