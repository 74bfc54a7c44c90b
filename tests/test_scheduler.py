"""The scheduler entry point: the weekly trigger in the publication's zone, and the job it runs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.engine import Engine

import scheduler
from newsletter import jobs
from newsletter.config import Settings
from newsletter.delivery.memory import MemoryProvider
from newsletter.dispatch import Envelope
from newsletter.render import make_environment
from newsletter.values import Week
from tests.newsletter.test_issues import CONTEXT, seed

BERLIN = ZoneInfo("Europe/Berlin")


def test_weekly_trigger_follows_the_time_zone_across_dst(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(timezone="Europe/Berlin", publish_cron="0 7 * * mon")
    before_change = scheduler.next_run(settings, datetime(2026, 10, 20, tzinfo=BERLIN))
    after_change = scheduler.next_run(settings, before_change)
    assert before_change == datetime(2026, 10, 26, 7, tzinfo=BERLIN)  # the Monday after DST ends
    assert after_change == datetime(2026, 11, 2, 7, tzinfo=BERLIN)
    assert before_change.utcoffset() != datetime(2026, 10, 19, 7, tzinfo=BERLIN).utcoffset()
    assert (before_change.astimezone(ZoneInfo("UTC")).hour, after_change.astimezone(ZoneInfo("UTC")).hour) == (6, 6)


def test_scheduler_registers_one_coalescing_job(make_settings: Callable[..., Settings]) -> None:
    built = scheduler.build_scheduler(make_settings(publish_cron="30 6 * * fri"))
    (job,) = built.get_jobs()
    assert job.id == scheduler.JOB_ID and job.coalesce and job.max_instances == 1
    assert str(job.trigger).startswith("cron[") and "day_of_week='fri'" in str(job.trigger)


def test_a_bad_cron_names_the_variable(make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch,
                                       tmp_path: Path) -> None:
    from newsletter.config import load_settings
    from newsletter.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEWSLETTER_PUBLISH_CRON", "every monday")
    with pytest.raises(ConfigError, match="NEWSLETTER_PUBLISH_CRON"):
        load_settings()


def test_publish_week_builds_and_sends_once(engine: Engine) -> None:
    directory = seed(engine)
    provider = MemoryProvider()
    envelope = Envelope("V <v@news.example.com>", "Verdicts", "news.example.com", "https://app.example.com")

    def publish() -> tuple[jobs.BuildOutcome, object]:
        return jobs.publish_week(engine, week=Week(2026, 47), source=directory, env=make_environment(),
                                 context=CONTEXT, site_url="https://site.example.com/", limit=8, provider=provider,
                                 envelope=envelope, batch_size=4)

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

    def publish() -> tuple[jobs.BuildOutcome, object]:
        return jobs.publish_week(engine, week=Week(2026, 47), source=directory, env=make_environment(),
                                 context=CONTEXT, site_url="https://site.example.com/", limit=8, provider=None,
                                 envelope=envelope, batch_size=4)

    outcome, report = publish()
    assert outcome.created and report is None
    with session_scope(engine) as session:
        assert issues.get_issue(session, 1).status == "sending"  # queued for the workers, nothing sent here
    send_issue(engine, 1, provider=MemoryProvider(), source=directory, envelope=envelope, top_up=False)
    assert publish() == (jobs.BuildOutcome(Week(2026, 47), 1, False, outcome.subject), None)  # sent: left alone
    with session_scope(engine) as session:
        issue = issues.get_issue(session, 1)
        assert issue.status == "sent"
        issue.status = "paused"
    publish()
    with session_scope(engine) as session:
        assert issues.get_issue(session, 1).status == "paused"  # an operator's pause is never lifted by a run
