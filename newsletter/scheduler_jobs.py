"""The scheduler's jobs: publish the week, send an approved issue, send what is due, housekeeping.

Module-level functions, because APScheduler's database job store keeps a job as a textual reference
(``newsletter.scheduler_jobs:publish``). Each takes optional settings (the scheduler passes none, so they are read
from the environment at run time), gets its collaborators from one ``wiring.build`` per run (its clock decides
what is due and how old is stale) and delegates to plain functions.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from datetime import timedelta

from newsletter import desk, maintenance, outage, publishing, wiring
from newsletter.catalog.sync import sync_catalog
from newsletter.clock import SYSTEM, Clock
from newsletter.config import Settings, load_settings
from newsletter.dispatch import SendReport
from newsletter.errors import IssueTooLarge
from newsletter.providers.base import Provider
from newsletter.values import Week
from newsletter.wiring import Wiring
from newsletter.worker import issues_to_send

log = logging.getLogger("newsletter.scheduler")
# Set by scheduler.main() on SIGTERM: a send in progress lets its batches in flight finish, records them and
# returns, so the process can exit without abandoning a lease. A module value because jobs are stored by name.
stopping = threading.Event()


def _rides_out(job: Callable[[Wiring], None]) -> Callable[..., None]:
    """``job`` with settings read at run time and its collaborators built once for the run, run again from the
    start after a database outage until SIGTERM. ``clock`` is for tests; the scheduler passes nothing.

    Every job may run again: catalog syncs upsert, an issue is built once per week, sends resume.
    """
    @functools.wraps(job)
    def run(settings: Settings | None = None, *, clock: Clock = SYSTEM) -> None:
        current = settings or load_settings()
        watch = outage.watch_for(current.database_url, cap=current.database_retry_seconds)
        with wiring.build(current, clock=clock) as wired:
            outage.ride_out(lambda: job(wired), watch=watch, stop=stopping)
    return run


@_rides_out
def publish(wired: Wiring) -> None:
    """The weekly job: sync the catalog, build the week's issue, then send it (auto) or ask the editors (review).

    An issue too large for Gmail is not built: one error line says what to cut, and the next run tries again.
    """
    try:
        _publish(wired)
    except IssueTooLarge as exc:
        log.error("the week's issue was not built: %s", exc)


def _publish(wired: Wiring) -> None:
    settings = wired.settings
    if settings.catalog_url:
        outcome = sync_catalog(wired.engine, str(settings.catalog_url), timeout=settings.request_timeout,
                               clock=wired.clock)
        log.info("catalog sync: %s (%s)", outcome.status, outcome.detail)
    if settings.publish_mode == "review":
        _build_for_review(wired)
        return
    built, report = publishing.publish_week(wired.engine, week=_this_week(wired), renderer=wired.renderer,
                                            provider=_provider(wired), sending=wired.sending, stop=stopping,
                                            clock=wired.clock)
    if built.quiet:
        log.info("quiet week %s: nothing new, no issue", built.week)
    else:
        _report(built.number, report, settings)


def _this_week(wired: Wiring) -> Week:
    return Week.current(wired.settings.zone, now=wired.clock.now())


def _build_for_review(wired: Wiring) -> None:
    built = publishing.build_issue(wired.engine, week=_this_week(wired), renderer=wired.renderer)
    if built.number is None:
        log.info("quiet week %s: nothing new, no issue", built.week)
        return
    addresses = wired.editor_addresses()
    if not addresses:
        log.warning("issue %s waits for review, but no editor has an address: set NEWSLETTER_EDITOR_EMAILS",
                    built.number)
    sent = desk.request_review(wired.engine, built.number, addresses=addresses, provider=wired.provider(),
                               envelope=wired.envelope, desk_url=str(wired.settings.public_url), clock=wired.clock)
    log.info("issue %s is a draft for review; %s review email(s) sent", built.number, sent)


@_rides_out
def send_approved(wired: Wiring) -> None:
    """At ``NEWSLETTER_SEND_CRON`` (review mode): send this week's issue if an editor approved it by now."""
    found = publishing.week_issue(wired.engine, _this_week(wired))
    if found is None:
        log.info("send time: no issue this week")
        return
    number, status, send_at = found
    if status == "draft":
        log.warning("send time: issue %s was not approved; it stays a draft until an editor approves or "
                    "schedules it", number)
    elif status == "approved" and send_at is None:
        _send_reported(wired, number)
    else:
        log.info("send time: issue %s is %s%s", number, status, f", scheduled for {send_at}" if send_at else "")


@_rides_out
def send_due(wired: Wiring) -> None:
    """Every minute: send issues scheduled for now or earlier, and carry on sends that were resumed or cut short or
    whose next wave has come due."""
    for number in publishing.due_issues(wired.engine, clock=wired.clock):
        _send_reported(wired, number)
    if wired.settings.send_with_workers:
        return  # the workers carry on every issue that is sending
    for number in issues_to_send(wired.engine, clock=wired.clock):
        if not stopping.is_set():
            _report(number, _send(wired, number, top_up=False), wired.settings)  # a wave: no top-up


@_rides_out
def housekeeping(wired: Wiring) -> None:
    """Release expired leases, reconcile unknown outcomes, queue failed deliveries worth another try, purge
    stale sign-ups."""
    settings, now = wired.settings, wired.clock.now()
    released = maintenance.release_expired_leases(wired.engine, clock=wired.clock)
    _reconcile(wired)
    retried = maintenance.retry_failed(wired.engine, attempts=settings.retry_attempts)
    purged = wired.recipients.purge_pending(now - timedelta(days=settings.pending_days))
    if released or retried or purged:
        log.info("housekeeping: %s expired lease(s) released, %s failed deliveries queued again, %s stale sign-up(s) "
                 "purged", released, retried, purged)


def _reconcile(wired: Wiring) -> None:
    """Settle unknown outcomes from the provider's record. Not opened as a context: a provider connects only if
    it is asked something (an SMTP relay never is)."""
    provider = wired.provider()
    try:
        for done in maintenance.reconcile_unknown(wired.engine, provider=provider, recipients=wired.recipients,
                                                  hours=wired.settings.reconcile_hours, clock=wired.clock):
            if done.accepted or done.requeued:
                log.info("housekeeping: issue %s reconciled: %s found at the provider (submitted), %s never sent "
                         "(queued again), %s still unknown", done.issue, done.accepted, done.requeued, done.waiting)
    finally:
        provider.close()


def _send_reported(wired: Wiring, number: int) -> None:
    try:
        _report(number, _send(wired, number), wired.settings)
    except IssueTooLarge as exc:  # one line saying what to cut; an issue the desk must trim holds up no other
        log.error("issue %s was not sent: %s", number, exc)


def _send(wired: Wiring, number: int, *, top_up: bool = True) -> SendReport | None:
    return publishing.send_now(wired.engine, number, provider=_provider(wired), sending=wired.sending, stop=stopping,
                               clock=wired.clock,
                               top_up=top_up)


def _provider(wired: Wiring) -> Provider | None:
    return None if wired.settings.send_with_workers else wired.provider()


def _report(number: int | None, report: SendReport | None, settings: Settings) -> None:
    if report is None:
        where = "with the workers" if settings.send_with_workers else "not sendable now (sent, paused or cancelled)"
        log.info("issue %s is %s", number, where)
    else:
        log.info("issue %s: %s submitted, %s rejected, %s failed, status %s", report.issue, report.submitted,
                 report.rejected, report.failed, report.status)
