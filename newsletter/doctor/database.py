"""The database: reachable and at the code's schema revision; the scheduler's jobs stored with their next runs;
workers seen recently (their heartbeat); no issue left ``sending`` with nothing in flight."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import column, func, inspect, select, table, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from newsletter import heartbeat, migrate, outage
from newsletter.config import Settings
from newsletter.doctor.context import Context, missing_sqlite_file
from newsletter.doctor.findings import Finding, failed, passed, skipped, warned
from newsletter.models import DeliveryBatchRow, DeliveryRow, IssueRow

SCHEDULER_JOBS = table("apscheduler_jobs", column("id"), column("next_run_time"))
ISSUES = IssueRow.__table__  # type: ignore[attr-defined]
DELIVERIES = DeliveryRow.__table__  # type: ignore[attr-defined]
BATCHES = DeliveryBatchRow.__table__  # type: ignore[attr-defined]
OVERDUE = timedelta(minutes=5)  # a job this late means no scheduler is running
BEATS_MISSED = 3  # a worker is alive if it beat within this many intervals


def check_database(ctx: Context) -> list[Finding]:
    """Reachable and current first; the rest only on a current schema, since they read its tables."""
    settings, now = ctx.settings, ctx.clock.now()
    missing = missing_sqlite_file(settings.database_url)
    if missing:  # connecting would create an empty database where the operator expected theirs
        return [failed("Database", f"no SQLite database at {missing}",
                       "correct NEWSLETTER_DATABASE_URL, or create it with `newsletter db upgrade`")]
    engine = ctx.wiring.engine
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        return [failed("Database", f"{outage.describe(settings.database_url)} cannot be reached: "
                       f"{outage.reason(exc)}", "start the database, or correct NEWSLETTER_DATABASE_URL")]
    found = [passed("Database", f"{outage.describe(settings.database_url)} answers")]
    state = migrate.state(engine)
    if state != "current":
        at = migrate.current(engine) or "nothing"
        found.append(failed("Schema", f"the database is at {at}, the code at {migrate.head()}",
                            "run `newsletter db upgrade`"))
        return [*found, skipped("Scheduler, workers, sends", "not checked until the schema is current")]
    found.append(passed("Schema", f"at the current revision {migrate.head()}"))
    return [*found, scheduler_jobs(engine, settings, now), workers(engine, settings, now), stuck_sends(engine,
                                                                                                        settings, now)]


def scheduler_jobs(engine: Engine, settings: Settings, now: datetime) -> Finding:
    """Every job the settings ask for is stored, with a next run time that is not long past."""
    import scheduler  # the entry point's own list of jobs; imported here, as the CLI does, to keep it out of import

    name = "Scheduler jobs"
    wanted = [spec.id for spec in scheduler.job_specs(settings)]
    if not inspect(engine).has_table("apscheduler_jobs"):
        return failed(name, "no scheduler has ever run on this database", "start `newsletter scheduler` (one only)")
    with engine.connect() as connection:
        stored = {row.id: row.next_run_time for row in connection.execute(select(SCHEDULER_JOBS))}
    missing = [job for job in wanted if job not in stored]
    if missing:
        return failed(name, f"missing: {', '.join(missing)}", "restart `newsletter scheduler`: it stores its jobs "
                                                               "on start")
    runs = {job: _when(stored[job]) for job in wanted}
    paused = [job for job, at in runs.items() if at is None]
    late = [job for job, at in runs.items() if at is not None and at < now - OVERDUE]
    listed = "; ".join(f"{job} {at:%Y-%m-%d %H:%M} UTC" if at else f"{job} paused" for job, at in runs.items())
    if late:
        return failed(name, f"overdue: {', '.join(late)} ({listed})", "the scheduler is not running: start "
                                                                      "`newsletter scheduler`")
    if paused:
        return warned(name, listed, "a paused job never runs: restart `newsletter scheduler` to resume it")
    return passed(name, listed)


def _when(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch is not None else None


def workers(engine: Engine, settings: Settings, now: datetime) -> Finding:
    """With sends handed to workers, at least one worker beat recently."""
    name = "Workers"
    if not settings.send_with_workers:
        return skipped(name, "NEWSLETTER_SEND_WITH_WORKERS is off: sends run in the scheduler and the CLI")
    alive = heartbeat.seen_since(engine, now - timedelta(seconds=BEATS_MISSED * settings.heartbeat_seconds))
    if alive:
        ago = (now - alive[0].seen_at).total_seconds()
        return passed(name, f"{len(alive)} worker(s) alive; last beat {ago:.0f} s ago ({alive[0].worker})")
    last = heartbeat.last_seen(engine)
    seen = f"last seen {last:%Y-%m-%d %H:%M:%S} UTC" if last else "none ever seen"
    return failed(name, f"no worker alive ({seen}): issues being sent wait in the queue",
                  "start `newsletter worker` (as many as you like)")


def stuck_sends(engine: Engine, settings: Settings, now: datetime) -> Finding:
    """No issue is ``sending`` with nothing leased and nothing submitted for a whole lease."""
    name = "Sends in progress"
    quiet_since = now - timedelta(seconds=settings.lease_seconds)
    stuck: list[int] = []
    moving: list[int] = []
    with engine.connect() as connection:
        sending = connection.execute(select(ISSUES.c.id, ISSUES.c.number).where(ISSUES.c.status == "sending"))
        for issue_id, number in sending.all():
            in_flight = connection.execute(select(func.count()).select_from(BATCHES).where(
                BATCHES.c.issue_id == issue_id, BATCHES.c.lease_until > now)).scalar_one()
            last = connection.execute(select(func.max(DELIVERIES.c.submitted_at))
                                      .where(DELIVERIES.c.issue_id == issue_id)).scalar_one()
            (moving if in_flight or (last is not None and last >= quiet_since) else stuck).append(number)
    if stuck:
        who = "`newsletter worker`" if settings.send_with_workers else "`newsletter scheduler` (its send-due job)"
        numbers = ", ".join(map(str, stuck))
        return failed(name, f"issue(s) {numbers} sending with nothing in flight for {settings.lease_seconds} s",
                      f"make sure {who} runs, or resume by hand: `newsletter issue send {stuck[0]}`")
    if moving:
        return passed(name, f"issue(s) {', '.join(map(str, moving))} sending and moving")
    return passed(name, "no issue is being sent")
