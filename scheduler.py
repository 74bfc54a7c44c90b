"""The APScheduler entry point: builds the scheduler from settings and registers the weekly job; nothing else.

``python scheduler.py`` (or ``newsletter scheduler``) runs until SIGTERM or Ctrl-C. Every
``NEWSLETTER_PUBLISH_CRON`` in ``NEWSLETTER_TIMEZONE`` it builds this week's issue (once per week, however
often it runs) and sends it. SIGTERM lets the job in flight finish its batch before the process exits.
"""

from __future__ import annotations

import logging
import signal
from datetime import datetime, timedelta
from types import FrameType

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

from newsletter import jobs, wiring
from newsletter.config import Settings, load_settings
from newsletter.values import Week

log = logging.getLogger("newsletter.scheduler")
JOB_ID = "publish-week"


def build_scheduler(settings: Settings) -> BlockingScheduler:
    """A scheduler with the weekly publish job; runs coalesce and never overlap."""
    scheduler = BlockingScheduler(timezone=settings.zone)
    trigger = CronTrigger.from_crontab(settings.publish_cron, timezone=settings.zone)
    scheduler.add_job(publish, trigger, id=JOB_ID, coalesce=True, max_instances=1, misfire_grace_time=3600,
                      replace_existing=True)
    return scheduler


def publish() -> None:
    """The weekly job: build this week's issue and send it."""
    settings = load_settings()
    provider = None if settings.send_with_workers else wiring.provider_for(settings)
    with wiring.database(settings) as engine:
        outcome, report = jobs.publish_week(
            engine, week=Week.current(settings.zone), source=wiring.directory_for(settings, engine),
            env=wiring.environment(), context=wiring.render_context(settings), site_url=str(settings.site_url),
            limit=settings.digest_limit, provider=provider, envelope=wiring.envelope_for(settings),
            batch_size=settings.batch_size, concurrency=settings.concurrency, rate_limit=settings.rate_limit,
            lease=timedelta(seconds=settings.lease_seconds))
    if outcome.quiet:
        log.info("quiet week %s: nothing new, no issue", outcome.week)
    elif report is None and provider is None:
        log.info("issue %s for %s is with the workers (or was already sent, or is paused)", outcome.number,
                 outcome.week)
    elif report is None:
        log.info("issue %s for %s was already sent or is paused", outcome.number, outcome.week)
    else:
        log.info("issue %s: %s submitted, %s rejected, status %s", report.issue, report.submitted,
                 report.rejected, report.status)


def main() -> None:
    """Run the scheduler in the foreground until SIGTERM or Ctrl-C."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load_settings()
    with wiring.database(settings):
        pass  # refuse to start on an out-of-date schema, before anything is scheduled
    scheduler = build_scheduler(settings)

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: finishing the job in flight, then stopping", signum)
        scheduler.shutdown(wait=True)

    signal.signal(signal.SIGTERM, stop)
    log.info("publishing at '%s' %s; next run %s", settings.publish_cron, settings.timezone,
             next_run(settings, datetime.now(settings.zone)))
    scheduler.start()


def next_run(settings: Settings, after: datetime) -> datetime:
    """When the weekly job fires next, strictly after ``after``, in the publication's time zone."""
    trigger = CronTrigger.from_crontab(settings.publish_cron, timezone=settings.zone)
    fire: datetime | None = trigger.get_next_fire_time(None, after + timedelta(seconds=1))
    assert fire is not None, "a crontab trigger always fires again"
    return fire


if __name__ == "__main__":
    main()
