"""Reconcile: settle deliveries whose outcome is unknown from the provider's own record.

Two moments leave an outcome unknown. A timeout after the request went out marks the batch ``failed`` with
:data:`~newsletter.deliveries.UNKNOWN_OUTCOME`; a sender killed mid-request leaves its batch to be claimed back.
Where the provider can be asked (``Provider.accepted``: Postmark's message search, Mailgun's events API):

* a failure is settled by :func:`reconcile_issue` (housekeeping, ``newsletter issue reconcile N``): found means
  ``submitted``; not found once the provider's ``search_delay`` has passed since the failure means it never
  went out, and it is queued again, once. Webhook events settle the same rows as they arrive (any provider).
  What is still unknown ``NEWSLETTER_RECONCILE_HOURS`` after it failed is left ``failed`` for the operator.
* a reclaimed batch is reconciled by :func:`reclaimed` before it is resent: what the service accepted is
  recorded ``submitted`` and only the rest goes out, so a crash duplicates nothing.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from newsletter import deliveries, issues
from newsletter.clock import SYSTEM, Clock
from newsletter.db import session_scope
from newsletter.errors import ProviderError, ProviderUnavailable
from newsletter.models import IssueRow
from newsletter.providers.base import Provider
from newsletter.recipients import RecipientSource
from newsletter.statuses import IssueStatus
from newsletter.values import SendResult

log = logging.getLogger("newsletter.reconcile")
LIVE = (IssueStatus.SENDING, IssueStatus.SENT)


@dataclass(frozen=True, slots=True)
class Reconciled:
    """What one reconciliation of an issue settled, and what it left."""

    issue: int
    accepted: int = 0  # the service has them: now submitted
    requeued: int = 0  # the service surely never took them: queued again
    waiting: int = 0  # not found yet, within the search delay (or the reader's record is gone): asked again later
    unanswerable: int = 0  # the provider cannot be asked: only its webhooks can settle these
    expired: int = 0  # unknown for longer than NEWSLETTER_RECONCILE_HOURS: left failed for the operator


def reconcile_issue(engine: Engine, number: int, *, provider: Provider, recipients: RecipientSource, hours: float,
                    clock: Clock = SYSTEM) -> Reconciled:
    """Ask the provider about issue ``number``'s unknown outcomes of the last ``hours`` and settle what it knows.

    The search spans the issue's life (from its build to now) and names each reader and delivery id, so a hit is
    exactly that message. Requeued deliveries reopen a sent issue; a cancelled or paused one keeps them failed.
    """
    with session_scope(engine) as session:
        issue = issues.get_issue(session, number)
        issue_id, since, status = issue.id, issue.created_at, issue.status
    assert issue_id is not None
    now = clock.now()
    rows = deliveries.unknown_outcomes(engine, issue_id)
    live = [(d, s, at) for d, s, at in rows if at is not None and at >= now - timedelta(hours=hours)]
    expired = len(rows) - len(live)
    people = recipients.by_ids([s for _, s, _ in live], active_only=False) if live else {}
    sent = {d: people[s].address for d, s, _ in live if s in people}
    found = provider.accepted(sent, since=since, until=now)
    if found is None:
        return Reconciled(number, unanswerable=len(live), expired=expired)
    accepted = deliveries.settle_accepted(engine, found, moment=now)
    sure = [d for d, _, at in live if d in sent and d not in found and at is not None
            and at + provider.search_delay <= now and status in LIVE]
    requeued = deliveries.settle_unsent(engine, sure)
    if requeued:
        with session_scope(engine) as session:
            issues.reopen_for_retry(issues.get_issue(session, number))
    return Reconciled(number, accepted, requeued, len(live) - accepted - requeued, 0, expired)


def reconcile_all(engine: Engine, *, provider: Provider, recipients: RecipientSource, hours: float,
                  clock: Clock = SYSTEM) -> list[Reconciled]:
    """Reconcile every sending or sent issue with unknown outcomes of the last ``hours`` (housekeeping); an issue
    the provider could not be asked about now is logged and tried again next time."""
    with session_scope(engine) as session:
        ids = deliveries.issues_with_unknown(session, clock.now() - timedelta(hours=hours))
        numbers = session.exec(select(IssueRow.number).where(col(IssueRow.id).in_(ids),
                                                             col(IssueRow.status).in_(LIVE))).all() if ids else []
    done = []
    for number in sorted(numbers):
        try:
            done.append(reconcile_issue(engine, number, provider=provider, recipients=recipients, hours=hours,
                                        clock=clock))
        except ProviderError as exc:
            log.warning("could not reconcile issue %s now: %s", number, exc)
    return done


def reclaimed(engine: Engine, claim: deliveries.Claim, *, provider: Provider, recipients: RecipientSource,
              since: datetime, lease: timedelta, clock: Clock = SYSTEM, stop: threading.Event | None = None
              ) -> tuple[list[SendResult], deliveries.Claim | None]:
    """Reconcile a batch taken back after its sender died, before anything is resent: (what the service had,
    recorded submitted; the claim narrowed to the rest, or None when nothing is left to send or the lease was
    lost). A provider that cannot be asked gets the claim back whole.

    A miss is trusted only ``search_delay`` after the dead sender's lease ran out (its request went out before
    then, if at all; when housekeeping cleared that time, from now); until that moment this sender waits, its
    lease renewed, and asks again. A provider that cannot be asked costs no wait. ``stop`` set during the wait
    (SIGTERM) releases the batch unsent and returns (nothing, None) within a second.
    """
    people = recipients.by_ids([s for _, s, _ in claim.rows], active_only=False)
    sent = {d: people[s].address for d, s, _ in claim.rows if s in people}
    ready = (claim.expired or clock.now()) + provider.search_delay
    stopped = False
    try:
        with deliveries.Keeper(engine, claim, lease, clock=clock) as keeper:  # many searches can take a while
            found = provider.accepted(sent, since=since, until=clock.now())
            if found is not None and len(found) < len(sent) and clock.now() < ready:
                stopped = not _wait_until(ready, clock, stop)
                if not stopped:
                    found = provider.accepted(sent, since=since, until=clock.now())
        if not keeper.held:
            return [], None
        if stopped:  # SIGTERM while waiting: the batch goes back whole, to be asked about again by its next sender
            deliveries.release(engine, claim)
            return [], None
    except ProviderError as exc:
        deliveries.release(engine, claim)  # still the same batch, asked again by whoever claims it next
        raise ProviderUnavailable(f"could not ask {provider.name} what it accepted of a batch taken back after a "
                                  f"crash ({exc}); run the send again later") from exc
    if found is None:
        return [], claim
    results = [SendResult(d, "submitted") for d in sorted(found)]
    written = deliveries.record(engine, claim, results, clock=clock) if results else set()
    rest = tuple(row for row in claim.rows if row[0] not in found)
    return [r for r in results if r.delivery_id in written], dataclasses.replace(claim, rows=rest) if rest else None


def _wait_until(moment: datetime, clock: Clock, stop: threading.Event | None) -> bool:
    """Sleep on ``clock`` until ``moment``, a second at a time; False when ``stop`` was set first."""
    while clock.now() < moment:
        if stop is not None and stop.is_set():
            return False
        clock.sleep(min(1.0, (moment - clock.now()).total_seconds()))
    return True
