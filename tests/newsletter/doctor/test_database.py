"""Database, schema, scheduler jobs, worker heartbeats and stuck sends, on both databases."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import Engine

import scheduler
from newsletter import heartbeat, migrate
from newsletter.clock import ManualClock
from newsletter.db import make_engine, session_scope
from newsletter.doctor import Context, Finding
from newsletter.doctor.database import check_database
from newsletter.models import DeliveryBatchRow, DeliveryRow, IssueRow

Build = Callable[..., Context]
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def by_name(found: list[Finding]) -> dict[str, Finding]:
    return {f.name: f for f in found}


def sending_issue(engine: Engine, *, leased: bool = False, submitted: datetime | None = None) -> None:
    """Issue 7, ``sending``, with one queued delivery (leased or not) and one submitted at ``submitted``."""
    with session_scope(engine) as session:
        issue = IssueRow(number=7, week="2026-W48", subject="Verdicts", status="sending", created_at=NOW)
        session.add(issue)
        session.flush()
        assert issue.id is not None
        batch = DeliveryBatchRow(issue_id=issue.id, due_at=NOW, key="b-1", fresh=not leased, claims=int(leased),
                                 lease_until=NOW + timedelta(minutes=5) if leased else None)
        session.add(batch)
        session.flush()
        session.add(DeliveryRow(issue_id=issue.id, subscriber_id=1, cohort_key="all", batch_id=batch.id, due_at=NOW))
        if submitted:
            session.add(DeliveryRow(issue_id=issue.id, subscriber_id=2, cohort_key="all", status="submitted",
                                    submitted_at=submitted))


def store_jobs(engine: Engine, context: Build, database_url: str) -> None:
    """Run the real scheduler's start on the database, so its jobs are stored, then stop it."""
    settings = context(database_url=database_url).settings
    jobs = scheduler.build_scheduler(settings, engine)
    scheduler.start(jobs, settings)
    jobs.shutdown(wait=False)


def test_a_current_schema_with_jobs_and_nothing_stuck_passes(engine: Engine, database_url: str,
                                                             context: Build) -> None:
    store_jobs(engine, context, database_url)
    found = by_name(check_database(context(database_url=database_url, clock=ManualClock(datetime.now(UTC)))))
    assert [f.status for f in found.values()] == ["pass", "pass", "pass", "skip", "pass"], found
    assert all(job in found["Scheduler jobs"].detail for job in ("publish-week", "send-due", "housekeeping"))


def test_a_schema_behind_fails_and_skips_what_reads_its_tables(tmp_path: Path, context: Build) -> None:
    from alembic import command

    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = make_engine(url)
    config = migrate._config()
    with old.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0007_smtp")
    old.dispose()
    found = by_name(check_database(context(database_url=url)))
    assert found["Schema"].status == "fail" and found["Schema"].fix == "run `newsletter db upgrade`"
    assert "0007_smtp" in found["Schema"].detail and found["Scheduler, workers, sends"].status == "skip"


def test_a_missing_sqlite_file_is_not_created(tmp_path: Path, context: Build) -> None:
    [finding] = check_database(context(database_url=f"sqlite:///{tmp_path / 'typo.db'}"))
    assert finding.status == "fail" and not (tmp_path / "typo.db").exists()


def test_an_unreachable_database_fails(context: Build) -> None:
    [finding] = check_database(context(database_url="postgresql://nobody@127.0.0.1:9/none"))
    assert finding.status == "fail" and "cannot be reached" in finding.detail


def test_no_scheduler_jobs_fail(engine: Engine, database_url: str, context: Build) -> None:
    found = by_name(check_database(context(database_url=database_url)))
    assert found["Scheduler jobs"].status == "fail" and "newsletter scheduler" in found["Scheduler jobs"].fix


def test_overdue_jobs_mean_no_scheduler_runs(engine: Engine, database_url: str, context: Build) -> None:
    store_jobs(engine, context, database_url)
    later = ManualClock(datetime.now(UTC) + timedelta(days=10))
    jobs = by_name(check_database(context(database_url=database_url, clock=later)))["Scheduler jobs"]
    assert jobs.status == "fail" and "overdue: publish-week" in jobs.detail


def test_workers_are_checked_by_their_heartbeat_when_sends_use_them(engine: Engine, database_url: str,
                                                                    context: Build) -> None:
    clock = ManualClock(NOW)
    settings = {"database_url": database_url, "send_with_workers": True, "clock": clock}
    none = by_name(check_database(context(**settings)))["Workers"]
    assert none.status == "fail" and "none ever seen" in none.detail
    heartbeat.beat(engine, "host:42", started=NOW, now=NOW)
    alive = by_name(check_database(context(**settings)))["Workers"]
    assert alive.status == "pass" and "host:42" in alive.detail
    clock.advance(timedelta(minutes=5))
    gone = by_name(check_database(context(**settings)))["Workers"]
    assert gone.status == "fail" and "last seen 2026-11-23 09:00:00 UTC" in gone.detail


def test_an_issue_sending_with_nothing_in_flight_is_stuck(engine: Engine, database_url: str, context: Build) -> None:
    sending_issue(engine, submitted=NOW - timedelta(hours=1))
    stuck = by_name(check_database(context(database_url=database_url, clock=ManualClock(NOW))))["Sends in progress"]
    assert stuck.status == "fail" and "issue(s) 7" in stuck.detail and "newsletter issue send 7" in stuck.fix


def test_an_issue_with_a_batch_in_flight_or_just_submitted_is_moving(engine: Engine, database_url: str,
                                                                     context: Build) -> None:
    sending_issue(engine, leased=True)
    moving = by_name(check_database(context(database_url=database_url, clock=ManualClock(NOW))))["Sends in progress"]
    assert moving.status == "pass" and "moving" in moving.detail
