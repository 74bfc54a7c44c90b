"""``newsletter doctor``: check an installation end to end and say what to fix.

Each module holds one group of checks; every check returns frozen ``Finding`` values (``findings.py``). A group
that cannot run at all (a setting it needs is missing, the database is away) becomes one failed finding naming
why, so one broken part never hides the others' results.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError

from newsletter import outage
from newsletter.doctor.context import Context, resolver_for
from newsletter.doctor.credentials import check_credentials
from newsletter.doctor.database import check_database
from newsletter.doctor.dns_checks import check_dns
from newsletter.doctor.findings import Finding, Status, failed
from newsletter.doctor.urls import check_urls
from newsletter.doctor.webhooks import check_webhooks
from newsletter.errors import NewsletterError

__all__ = ["GROUPS", "Context", "Finding", "Status", "counts", "resolver_for", "run_checks"]
GROUPS: tuple[tuple[str, Callable[[Context], list[Finding]]], ...] = (
    ("DNS", check_dns), ("Public URL", check_urls), ("Provider", check_credentials), ("Webhooks", check_webhooks),
    ("Database", check_database))


def run_checks(ctx: Context) -> list[Finding]:
    """Every group's findings, in order."""
    findings: list[Finding] = []
    for label, group in GROUPS:
        try:
            findings.extend(group(ctx))
        except NewsletterError as exc:
            findings.append(failed(label, f"not checked: {exc}", "fix what the message names, then run it again"))
        except SQLAlchemyError as exc:
            findings.append(failed(label, f"not checked: the database failed: {outage.reason(exc)}",
                                   "see the Database findings"))
    return findings


def counts(findings: list[Finding]) -> dict[Status, int]:
    """How many findings have each status (every status present, zero or not)."""
    found = Counter(f.status for f in findings)
    return {status: found.get(status, 0) for status in ("pass", "warn", "fail", "skip")}
