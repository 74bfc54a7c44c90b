"""The scheduler's jobs: publish the week, send an approved issue, send what is due, housekeeping.

Module-level functions, because APScheduler's database job store keeps a job as a textual reference
(``newsletter.scheduler_jobs:publish``). Each takes optional settings (the scheduler passes none, so they are read
from the environment at run time), wires its collaborators and delegates to plain functions.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from newsletter import desk, maintenance, outage, publishing, wiring
from newsletter.catalog.sync import sync_catalog
from newsletter.config import Settings, load_settings
from newsletter.dispatch import SendReport
from newsletter.errors import IssueTooLarge
from newsletter.providers.base import Provider
from newsletter.values import Week
from newsletter.worker import issues_to_send

log = logging.getLogger("newsletter.scheduler")
# Set by scheduler.main() on SIGTERM: a send in progress lets its batches in flight finish, records them and
# returns, so the process can exit without abandoning a lease. A module value because jobs are stored by name.
stopping = threading.Event()


def _rides_out(job: Callable[[Settings], None]) -> Callable[[Settings | None], None]:
    """``job`` with settings read at run time, run again from the start after a database outage until SIGTERM.

    Every job may run again: catalog syncs upsert, an issue is built once per week, sends resume.
    """
    @functools.wraps(job)
    def run(settings: Settings | None = None) -> None:
        current = settings or load_settings()
        watch = outage.watch_for(current.database_url, cap=current.database_retry_seconds)
        outage.ride_out(lambda: job(current), watch=watch, stop=stopping)
    return run


@_rides_out
def publish(settings: Settings) -> None:
    """The weekly job: sync the catalog, build the week's issue, then send it (auto) or ask the editors (review).

    An issue too large for Gmail is not built: one error line says what to cut, and the next run tries again.
    """
    try:
        _publish(settings)
    except IssueTooLarge as exc:
        log.error("the week's issue was not built: %s", exc)


def _publish(settings: Settings) -> None:
    with wiring.database(settings) as engine:
        if settings.catalog_url:
            outcome = sync_catalog(engine, str(settings.catalog_url), timeout=settings.request_timeout)
            log.info("catalog sync: %s (%s)", outcome.status, outcome.detail)
        if settings.publish_mode == "review":
            _build_for_review(settings, engine)
            return
        source = wiring.directory_for(settings, engine)
        built, report = publishing.publish_week(
            engine, week=Week.current(settings.zone), source=source, env=wiring.environment(),
            context=wiring.render_context(settings), site_url=str(settings.site_url), limit=settings.digest_limit,
            provider=_provider(settings), envelope=wiring.envelope_for(settings), stop=stopping,
            **wiring.send_options(settings))
    if built.quiet:
        log.info("quiet week %s: nothing new, no issue", built.week)
    else:
        _report(built.number, report, settings)


def _build_for_review(settings: Settings, engine: Engine) -> None:
    built = publishing.build_issue(engine, week=Week.current(settings.zone),
                                   source=wiring.directory_for(settings, engine), env=wiring.environment(),
                                   context=wiring.render_context(settings), site_url=str(settings.site_url),
                                   limit=settings.digest_limit)
    if built.number is None:
        log.info("quiet week %s: nothing new, no issue", built.week)
        return
    addresses = wiring.editor_addresses(settings, engine)
    if not addresses:
        log.warning("issue %s waits for review, but no editor has an address: set NEWSLETTER_EDITOR_EMAILS",
                    built.number)
    sent = desk.request_review(engine, built.number, addresses=addresses, provider=wiring.provider_for(settings),
                               envelope=wiring.envelope_for(settings), desk_url=str(settings.public_url))
    log.info("issue %s is a draft for review; %s review email(s) sent", built.number, sent)


@_rides_out
def send_approved(settings: Settings) -> None:
    """At ``NEWSLETTER_SEND_CRON`` (review mode): send this week's issue if an editor approved it by now."""
    with wiring.database(settings) as engine:
        found = publishing.week_issue(engine, Week.current(settings.zone))
        if found is None:
            log.info("send time: no issue this week")
            return
        number, status, send_at = found
        if status == "draft":
            log.warning("send time: issue %s was not approved; it stays a draft until an editor approves or "
                        "schedules it", number)
        elif status == "approved" and send_at is None:
            _send_reported(settings, engine, number)
        else:
            log.info("send time: issue %s is %s%s", number, status, f", scheduled for {send_at}" if send_at else "")


@_rides_out
def send_due(settings: Settings) -> None:
    """Every minute: send issues scheduled for now or earlier, and carry on sends that were resumed or cut short."""
    with wiring.database(settings) as engine:
        for number in publishing.due_issues(engine, datetime.now(UTC)):
            _send_reported(settings, engine, number)
        if settings.send_with_workers:
            return  # the workers carry on every issue that is sending
        for number in issues_to_send(engine):
            if not stopping.is_set():
                _report(number, _send(settings, engine, number, top_up=False), settings)


@_rides_out
def housekeeping(settings: Settings) -> None:
    """Release expired leases, queue failed deliveries worth another try, purge stale sign-ups."""
    with wiring.database(settings) as engine:
        released = maintenance.release_expired_leases(engine)
        retried = maintenance.retry_failed(engine, attempts=settings.retry_attempts)
        cutoff = datetime.now(UTC) - timedelta(days=settings.pending_days)
        purged = wiring.directory_for(settings, engine).purge_pending(cutoff)
    if released or retried or purged:
        log.info("housekeeping: %s expired lease(s) released, %s failed deliveries queued again, %s stale sign-up(s) "
                 "purged", released, retried, purged)


def _send_reported(settings: Settings, engine: Engine, number: int) -> None:
    try:
        _report(number, _send(settings, engine, number), settings)
    except IssueTooLarge as exc:  # one line saying what to cut; an issue the desk must trim holds up no other
        log.error("issue %s was not sent: %s", number, exc)


def _send(settings: Settings, engine: Engine, number: int, *, top_up: bool = True) -> SendReport | None:
    return publishing.send_now(engine, number, provider=_provider(settings),
                               source=wiring.directory_for(settings, engine),
                         envelope=wiring.envelope_for(settings), stop=stopping, top_up=top_up,
                         **wiring.send_options(settings))


def _provider(settings: Settings) -> Provider | None:
    return None if settings.send_with_workers else wiring.provider_for(settings)


def _report(number: int | None, report: SendReport | None, settings: Settings) -> None:
    if report is None:
        where = "with the workers" if settings.send_with_workers else "not sendable now (sent, paused or cancelled)"
        log.info("issue %s is %s", number, where)
    else:
        log.info("issue %s: %s submitted, %s rejected, %s failed, status %s", report.issue, report.submitted,
                 report.rejected, report.failed, report.status)
