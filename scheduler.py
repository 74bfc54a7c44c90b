"""The APScheduler entry point: builds the scheduler from settings and registers the jobs; nothing else.

``python scheduler.py`` (or ``newsletter scheduler``) runs until SIGTERM or Ctrl-C. Jobs live in the
project's database (APScheduler's ``apscheduler_jobs`` table), so a run missed while the process was down
happens once when it starts again (coalesced), if it is less than ``NEWSLETTER_MISFIRE_GRACE_SECONDS`` late;
a run later than that is skipped with a warning in the log, never silently. The jobs, in
``newsletter.scheduler_jobs``:

- ``publish-week`` at ``NEWSLETTER_PUBLISH_CRON``: sync the catalog, build the week's issue, send it (``auto``)
  or email the editors for review (``review``);
- ``send-approved`` at ``NEWSLETTER_SEND_CRON`` (review mode only): send the week's issue if it was approved;
- ``send-due`` every minute: scheduled issues whose time came, resumed or interrupted sends;
- ``housekeeping`` every ``NEWSLETTER_MAINTENANCE_MINUTES``: expired leases, failed deliveries, stale sign-ups.

Jobs run one at a time, so two sends never race in this process. SIGTERM lets the batches in flight finish
and be recorded, then the process exits.
"""

from __future__ import annotations

import logging
import pickle
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any, TypeVar

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from newsletter import logs, metrics, outage, scheduler_jobs, wiring
from newsletter.config import Settings, load_settings
from newsletter.errors import NewsletterError

log = logging.getLogger("newsletter.scheduler")
JOB_ID = "publish-week"
OLD_JOBS_MODULE = "newsletter.scheduled:"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class JobSpec:
    """A job as settings define it: id, the function's textual reference, its trigger."""

    id: str
    func: str
    trigger: Any


def job_specs(settings: Settings) -> list[JobSpec]:
    """The jobs these settings ask for."""
    zone = settings.zone
    specs = [JobSpec(JOB_ID, "newsletter.scheduler_jobs:publish", CronTrigger.from_crontab(settings.publish_cron,
                                                                                      timezone=zone))]
    if settings.publish_mode == "review":
        specs.append(JobSpec("send-approved", "newsletter.scheduler_jobs:send_approved",
                             CronTrigger.from_crontab(settings.send_cron, timezone=zone)))
    specs.append(JobSpec("send-due", "newsletter.scheduler_jobs:send_due", IntervalTrigger(minutes=1, timezone=zone)))
    specs.append(JobSpec("housekeeping", "newsletter.scheduler_jobs:housekeeping",
                         IntervalTrigger(minutes=settings.maintenance_minutes, timezone=zone)))
    return specs


class JobStore(SQLAlchemyJobStore):  # type: ignore[misc]
    """APScheduler's database job store, made to wait out a database outage instead of failing.

    Unguarded, APScheduler logs a warning per attempt when it cannot read the due jobs, and a failure to
    store a job's next run time kills its scheduling thread while the process stays up doing nothing.
    """

    def __init__(self, engine: Engine, watch: outage.Watch) -> None:
        super().__init__(engine=engine)
        self.watch = watch
        self.backoff = outage.Backoff(watch.cap)

    def _guard(self, action: Callable[[], T], fallback: Callable[[], T]) -> T:
        try:
            result = action()
        except DBAPIError as exc:
            if not outage.is_outage(exc):
                raise
            self.watch.down(exc)
            return fallback()
        self.watch.up()
        self.backoff.reset()
        return result

    def _reconstitute_job(self, job_state: bytes) -> Any:
        """A stored job, its function reference moved from ``newsletter.scheduled`` (the jobs' module before it was
        renamed ``newsletter.scheduler_jobs``), so a store written by an older release keeps its next run times."""
        state = pickle.loads(job_state)
        if isinstance(state.get("func"), str) and state["func"].startswith(OLD_JOBS_MODULE):
            state["func"] = "newsletter.scheduler_jobs:" + state["func"].removeprefix(OLD_JOBS_MODULE)
        return super()._reconstitute_job(pickle.dumps(state, pickle.HIGHEST_PROTOCOL))

    def get_due_jobs(self, now: datetime) -> list[Any]:
        """The due jobs; none while the database is away."""
        return self._guard(lambda: list(super(JobStore, self).get_due_jobs(now)), list)

    def get_next_run_time(self) -> datetime | None:
        """The next run time; while the database is away, the next attempt to reach it (capped backoff)."""
        return self._guard(self._stored_next_run_time,
                           lambda: datetime.now(UTC) + timedelta(seconds=self.backoff.next()))

    def _stored_next_run_time(self) -> datetime | None:
        found: datetime | None = super().get_next_run_time()
        return found

    def update_job(self, job: Any) -> None:
        """Store the job's next run; when the database is away the job stays due and runs again once it is
        back, which every job here allows (building is once per week, sends resume)."""
        self._guard(lambda: super(JobStore, self).update_job(job), lambda: None)


def build_scheduler(settings: Settings, engine: Engine) -> BackgroundScheduler:
    """A scheduler keeping its jobs in ``engine``'s database; one job runs at a time, runs coalesce."""
    watch = outage.watch_for(settings.database_url, cap=settings.database_retry_seconds)
    scheduler = BackgroundScheduler(
        jobstores={"default": JobStore(engine, watch)},
        executors={"default": ThreadPoolExecutor(1)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": settings.misfire_grace_seconds},
        timezone=settings.zone)
    scheduler.add_listener(_on_missed, EVENT_JOB_MISSED)
    scheduler.add_listener(_on_error, EVENT_JOB_ERROR)
    return scheduler


def start(scheduler: BackgroundScheduler, settings: Settings) -> None:
    """Start with the stored jobs brought in line with ``settings``; runs missed meanwhile are due at once.

    A job whose trigger did not change keeps its stored next run time: that is what makes a missed run happen
    on restart. A changed trigger is rescheduled; a job the settings no longer ask for is removed.
    """
    scheduler.start(paused=True)
    specs = job_specs(settings)
    for spec in specs:
        job = scheduler.get_job(spec.id)
        if job is None:
            scheduler.add_job(spec.func, spec.trigger, id=spec.id, name=spec.id)
        elif repr(job.trigger) != repr(spec.trigger) or job.func_ref != spec.func:
            scheduler.remove_job(spec.id)
            scheduler.add_job(spec.func, spec.trigger, id=spec.id, name=spec.id)
        else:
            scheduler.modify_job(spec.id, misfire_grace_time=settings.misfire_grace_seconds)
    wanted = {spec.id for spec in specs}
    for job in scheduler.get_jobs():
        if job.id not in wanted:
            scheduler.remove_job(job.id)
    scheduler.resume()


def _on_missed(event: JobExecutionEvent) -> None:
    log.warning("job %s missed its run at %s by more than NEWSLETTER_MISFIRE_GRACE_SECONDS; it runs again at its "
                "next time (run it by hand if needed: `newsletter issue build` / `issue send`)", event.job_id,
                event.scheduled_run_time)


def _on_error(event: JobExecutionEvent) -> None:
    log.error("job %s failed: %s", event.job_id, event.exception, exc_info=event.exception)


def main() -> None:
    """Run the scheduler in the foreground until SIGTERM or Ctrl-C."""
    # Until the settings are read (they may be what is wrong), lines go out as logfmt at INFO; configure() below
    # replaces this handler with NEWSLETTER_LOG_FORMAT at NEWSLETTER_LOG_LEVEL.
    early = logging.StreamHandler()
    early.setFormatter(logs.Formatter("logfmt"))
    logging.basicConfig(level=logging.INFO, handlers=[early])
    done = threading.Event()

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: finishing the batches in flight, then stopping", signum)
        scheduler_jobs.stopping.set()
        done.set()

    settings = load_settings()
    settings.require("secret_key", "postal_address", provider=True)  # every missing one said at once, at start
    logs.configure(settings)  # one line per event, logfmt or JSON
    metrics.expose(settings)  # /metrics on NEWSLETTER_METRICS_PORT, when set
    # Only at start does an outage end the scheduler: once running, jobs and their store wait outages out.
    with outage.reported(settings.database_url, advice="start the scheduler again once it is back"):
        _run(settings, stop, done)
    log.info("scheduler stopped")


def run() -> None:
    """``python scheduler.py``: :func:`main`, with bad settings, an old schema or a database down at start said
    in one line and exit status 1 (``newsletter scheduler`` says it through the CLI's own error handling)."""
    try:
        main()
    except NewsletterError as exc:
        log.error("%s", exc)
        raise SystemExit(1) from None


def _run(settings: Settings, stop: Callable[[int, FrameType | None], None], done: threading.Event) -> None:
    with wiring.build(settings) as wired:
        scheduler = build_scheduler(settings, wired.engine)  # the engine refuses an out-of-date schema first
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        start(scheduler, settings)
        log.info("publishing at '%s' %s (%s mode); next run %s", settings.publish_cron, settings.timezone,
                 settings.publish_mode, next_run(settings, wired.clock.now()))
        done.wait()
        scheduler.shutdown(wait=True)


def next_run(settings: Settings, after: datetime) -> datetime:
    """When the weekly publish job fires next, strictly after ``after``, in the publication's zone."""
    trigger = CronTrigger.from_crontab(settings.publish_cron, timezone=settings.zone)
    fire: datetime | None = trigger.get_next_fire_time(None, after + timedelta(seconds=1))
    assert fire is not None, "a crontab trigger always fires again"
    return fire


if __name__ == "__main__":
    run()
