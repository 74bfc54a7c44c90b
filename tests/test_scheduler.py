"""The scheduler entry point: the weekly trigger in the publication's zone, and the job it runs."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from apscheduler.events import EVENT_JOB_EXECUTED
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

import scheduler
from newsletter import issues, publishing
from newsletter.config import Settings
from newsletter.db import session_scope
from newsletter.deliveries import BATCHES
from newsletter.dispatch import Envelope, Sending, SendOptions
from newsletter.providers.memory import MemoryProvider
from newsletter.recipients import RecipientSource
from newsletter.render import make_environment
from newsletter.values import Week
from tests.conftest import ROOT
from tests.newsletter.test_issues import CONTEXT, seed
from tests.scheduling import env_settings, outbox, seed_this_week

BERLIN = ZoneInfo("Europe/Berlin")


def test_weekly_trigger_follows_the_time_zone_across_dst(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(timezone="Europe/Berlin", publish_cron="0 7 * * mon")
    before_change = scheduler.next_run(settings, datetime(2026, 10, 20, tzinfo=BERLIN))
    after_change = scheduler.next_run(settings, before_change)
    assert before_change == datetime(2026, 10, 26, 7, tzinfo=BERLIN)  # the Monday after DST ends
    assert after_change == datetime(2026, 11, 2, 7, tzinfo=BERLIN)
    assert before_change.utcoffset() != datetime(2026, 10, 19, 7, tzinfo=BERLIN).utcoffset()
    assert (before_change.astimezone(ZoneInfo("UTC")).hour, after_change.astimezone(ZoneInfo("UTC")).hour) == (6, 6)


def test_stored_triggers_fire_in_the_publication_zone_across_dst(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(timezone="Europe/Berlin", publish_mode="review", publish_cron="0 7 * * mon",
                             send_cron="30 9 * * tue")
    triggers = {spec.id: spec.trigger for spec in scheduler.job_specs(settings)}
    before = datetime(2026, 10, 20, tzinfo=BERLIN)  # the week before DST ends on 25 October
    publish = triggers["publish-week"].get_next_fire_time(None, before)
    send = triggers["send-approved"].get_next_fire_time(None, publish)
    assert (publish, send) == (datetime(2026, 10, 26, 7, tzinfo=BERLIN), datetime(2026, 10, 27, 9, 30, tzinfo=BERLIN))
    assert publish.astimezone(UTC).hour == 6 and send.astimezone(UTC).hour == 8  # CET, an hour later in UTC
    spring = triggers["publish-week"].get_next_fire_time(None, datetime(2027, 3, 24, tzinfo=BERLIN))
    assert spring == datetime(2027, 3, 29, 7, tzinfo=BERLIN) and spring.astimezone(UTC).hour == 5  # CEST


def test_a_bad_cron_names_the_variable(make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch,
                                       tmp_path: Path) -> None:
    from newsletter.config import load_settings
    from newsletter.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEWSLETTER_PUBLISH_CRON", "every monday")
    with pytest.raises(ConfigError, match="NEWSLETTER_PUBLISH_CRON"):
        load_settings()


def _renderer(directory: RecipientSource) -> publishing.Renderer:
    return publishing.Renderer(directory, make_environment(), CONTEXT, "https://site.example.com/", limit=8)


def test_publish_week_builds_and_sends_once(engine: Engine) -> None:
    directory = seed(engine)
    provider = MemoryProvider()
    envelope = Envelope("V <v@news.example.com>", "Verdicts", "news.example.com", "https://app.example.com")

    def publish() -> tuple[publishing.BuildOutcome, object]:
        return publishing.publish_week(engine, week=Week(2026, 47), renderer=_renderer(directory), provider=provider,
                                       sending=Sending(directory, envelope, SendOptions(batch_size=4)))

    outcome, report = publish()
    assert outcome.created and report is not None and len(provider.outbox) == 10
    again, second = publish()
    assert not again.created and second is None and len(provider.outbox) == 10


def test_handing_to_workers_respects_sent_and_paused_issues(engine: Engine) -> None:
    from newsletter import issues
    from newsletter.db import session_scope
    from newsletter.dispatch import send_issue

    directory = seed(engine)
    envelope = Envelope("V <v@news.example.com>", "Verdicts", "news.example.com", "https://app.example.com")

    def publish() -> tuple[publishing.BuildOutcome, object]:
        return publishing.publish_week(engine, week=Week(2026, 47), renderer=_renderer(directory), provider=None,
                                       sending=Sending(directory, envelope, SendOptions(batch_size=4)))

    outcome, report = publish()
    assert outcome.created and report is None
    with session_scope(engine) as session:
        assert issues.get_issue(session, 1).status == "sending"  # queued for the workers, nothing sent here
    send_issue(engine, 1, provider=MemoryProvider(), sending=Sending(directory, envelope), top_up=False)
    assert publish() == (publishing.BuildOutcome(Week(2026, 47), 1, False, outcome.subject), None)  # sent: left alone
    with session_scope(engine) as session:
        issue = issues.get_issue(session, 1)
        assert issue.status == "sent"
        issue.status = "paused"
    publish()
    with session_scope(engine) as session:
        assert issues.get_issue(session, 1).status == "paused"  # an operator's pause is never lifted by a run


def _started(settings: Settings, engine: Engine) -> BackgroundScheduler:
    built = scheduler.build_scheduler(settings, engine)
    scheduler.start(built, settings)
    return built


def test_jobs_follow_the_publish_mode_and_keep_to_one_run_at_a_time(
        engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str) -> None:
    settings = env_settings(monkeypatch, tmp_path, database_url, publish_cron="30 6 * * fri")
    built = _started(settings, engine)
    try:
        jobs_by_id = {job.id: job for job in built.get_jobs()}
        assert set(jobs_by_id) == {"publish-week", "send-due", "housekeeping"}
        publish = jobs_by_id["publish-week"]
        assert publish.coalesce and publish.max_instances == 1
        assert publish.misfire_grace_time == settings.misfire_grace_seconds
        assert "day_of_week='fri'" in str(publish.trigger) and "hour='6'" in str(publish.trigger)
    finally:
        built.shutdown()
    review = env_settings(monkeypatch, tmp_path, database_url, publish_mode="review", send_cron="0 9 * * tue",
                          publish_cron="0 7 * * mon")
    built = _started(review, engine)
    try:
        assert {job.id for job in built.get_jobs()} == {"publish-week", "send-approved", "send-due", "housekeeping"}
        assert "day_of_week='mon'" in str(built.get_job("publish-week").trigger)  # the changed cron replaced it
    finally:
        built.shutdown()
    built = _started(settings, engine)  # back to auto: the send-approved job is removed from the store
    try:
        assert built.get_job("send-approved") is None
    finally:
        built.shutdown()


def test_a_restart_keeps_the_stored_next_run(engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                             database_url: str) -> None:
    settings = env_settings(monkeypatch, tmp_path, database_url)
    built = _started(settings, engine)
    built.pause()
    later = datetime.now(UTC) + timedelta(days=3, minutes=17)
    built.modify_job(scheduler.JOB_ID, next_run_time=later)
    built.shutdown()
    built = _started(settings, engine)
    try:
        assert built.get_job(scheduler.JOB_ID).next_run_time == later.replace(microsecond=later.microsecond)
    finally:
        built.shutdown()


def test_a_store_written_before_the_jobs_module_was_renamed_keeps_its_next_run(
        engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str) -> None:
    settings = env_settings(monkeypatch, tmp_path, database_url)
    built = _started(settings, engine)
    built.pause()
    later = datetime.now(UTC) + timedelta(days=2, minutes=5)
    built.modify_job(scheduler.JOB_ID, next_run_time=later)
    built.shutdown()
    with engine.begin() as connection:  # as an older release stored it: the jobs lived in newsletter.scheduled
        table = SQLAlchemyJobStore(engine=engine).jobs_t
        state = pickle.loads(connection.execute(select(table.c.job_state).where(table.c.id == scheduler.JOB_ID))
                             .scalar_one())
        state["func"] = "newsletter.scheduled:publish"
        connection.execute(update(table).where(table.c.id == scheduler.JOB_ID)
                           .values(job_state=pickle.dumps(state, pickle.HIGHEST_PROTOCOL)))
    built = _started(settings, engine)
    try:
        job = built.get_job(scheduler.JOB_ID)
        assert job.func_ref == "newsletter.scheduler_jobs:publish"
        assert job.next_run_time == later
    finally:
        built.shutdown()


def _miss_the_run(settings: Settings, engine: Engine, late: timedelta) -> None:
    """Run a scheduler, stop it, and leave the stored publish run ``late`` in the past: the process was down."""
    _started(settings, engine).shutdown()
    store = SQLAlchemyJobStore(engine=engine)  # edited at rest, as the next process will find it
    store.start(scheduler.build_scheduler(settings, engine), "default")
    job = store.lookup_job(scheduler.JOB_ID)
    job._modify(next_run_time=datetime.now(UTC) - late)
    store.update_job(job)


def _wait_for(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_run_missed_while_down_happens_once_on_restart(
        engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str) -> None:
    settings = env_settings(monkeypatch, tmp_path, database_url)
    seed_this_week(engine, readers=6)
    _miss_the_run(settings, engine, late=timedelta(minutes=40))
    runs: list[str] = []
    built = scheduler.build_scheduler(settings, engine)
    built.add_listener(lambda event: runs.append(event.job_id), EVENT_JOB_EXECUTED)
    scheduler.start(built, settings)
    try:
        _wait_for(lambda: scheduler.JOB_ID in runs)
        next_run = built.get_job(scheduler.JOB_ID).next_run_time
    finally:
        built.shutdown(wait=True)
    assert runs.count(scheduler.JOB_ID) == 1
    assert next_run > datetime.now(UTC)  # the next weekly run, not another catch-up
    again = scheduler.build_scheduler(settings, engine)  # a second restart runs nothing again
    again.add_listener(lambda event: runs.append(event.job_id), EVENT_JOB_EXECUTED)
    scheduler.start(again, settings)
    time.sleep(1.0)
    again.shutdown(wait=True)
    assert runs.count(scheduler.JOB_ID) == 1
    with session_scope(engine) as session:
        (summary,) = issues.list_issues(session)
    assert summary.status == "sent" and summary.deliveries == {"submitted": 6}
    assert len(outbox(settings)) == 6


def test_a_run_missed_beyond_the_grace_time_is_skipped_with_a_warning(
        engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str,
        caplog: pytest.LogCaptureFixture) -> None:
    settings = env_settings(monkeypatch, tmp_path, database_url, misfire_grace_seconds=600)
    seed_this_week(engine)
    _miss_the_run(settings, engine, late=timedelta(hours=2))
    built = _started(settings, engine)
    try:
        _wait_for(lambda: "missed its run" in caplog.text)
    finally:
        built.shutdown(wait=True)
    with session_scope(engine) as session:
        assert issues.list_issues(session) == []


def test_sigterm_finishes_the_batch_in_flight_records_it_and_exits_cleanly(
        engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str) -> None:
    settings = env_settings(monkeypatch, tmp_path, database_url, batch_size=10, concurrency=1, rate_limit=40)
    seed_this_week(engine, readers=400)
    _miss_the_run(settings, engine, late=timedelta(minutes=5))  # so the publish job is due the moment it starts
    process = subprocess.Popen([sys.executable, str(ROOT / "scheduler.py")], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for(lambda: _submitted(engine) >= 30, seconds=60)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert "finishing the batches in flight" in output and "scheduler stopped" in output
    submitted = _submitted(engine)
    with engine.connect() as connection:
        leased = connection.execute(BATCHES.select().where(BATCHES.c.lease_until.is_not(None))).all()
    assert 30 <= submitted < 400 and leased == []  # stopped early, and nothing left claimed
    assert len(outbox(settings)) == submitted  # every message that went out was recorded as submitted


def _submitted(engine: Engine) -> int:
    with session_scope(engine) as session:
        summaries = issues.list_issues(session)
    return summaries[0].deliveries.get("submitted", 0) if summaries else 0


def test_bad_settings_stop_the_scheduler_with_one_clear_message(tmp_path: Path) -> None:
    """``python scheduler.py`` with a guessable key names the setting and the fix, with no traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")} | {
        "NEWSLETTER_DATABASE_URL": f"sqlite:///{tmp_path / 'newsletter.db'}", "NEWSLETTER_SECRET_KEY": "password12345678"}
    done = subprocess.run([sys.executable, str(ROOT / "scheduler.py")], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert "NEWSLETTER_SECRET_KEY" in done.stderr and "newsletter secret" in done.stderr, done.stderr
    assert done.stderr.startswith("time=") and " level=error logger=newsletter.scheduler " in done.stderr  # logfmt
