"""Local delivery: waves at each reader's local 07:00, sent as they come due by an injected clock, never early."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from newsletter import desk, issues, scheduler_jobs, waves, worker
from newsletter.clock import ManualClock
from newsletter.db import session_scope
from newsletter.dispatch import Sending, SendOptions, send_issue
from newsletter.errors import SubscriberError
from newsletter.models import DeliveryRow
from newsletter.providers.memory import MemoryProvider
from newsletter.zones import LocalTime
from subscribers import service, signup, store
from subscribers.models import Subscriber
from tests.newsletter.test_dispatch import ENVELOPE
from tests.newsletter.test_issues import build, seed
from tests.scheduling import env_settings, outbox, seed_this_week

LOCAL = LocalTime(time(7, 0), "Europe/Berlin")
START = datetime(2026, 10, 31, 17, 30, tzinfo=UTC)  # Saturday; US clocks go back on Sunday, Europe's went last week
ZONES = {"all0@example.com": "Pacific/Auckland", "free@example.com": "Pacific/Auckland",
         "all1@example.com": "America/Los_Angeles", "design0@example.com": "America/New_York",
         "design1@example.com": "America/New_York", "design2@example.com": "America/New_York",
         "all2@example.com": "Asia/Kolkata", "writing@example.com": "Asia/Kolkata",
         "all3@example.com": "Asia/Kathmandu"}  # all4 has none: the publication's zone
WAVES = [  # (when, who) in the order they come due
    (datetime(2026, 10, 31, 18, 0, tzinfo=UTC), {"all0@example.com", "free@example.com"}),
    (datetime(2026, 11, 1, 1, 15, tzinfo=UTC), {"all3@example.com"}),
    (datetime(2026, 11, 1, 1, 30, tzinfo=UTC), {"all2@example.com", "writing@example.com"}),
    (datetime(2026, 11, 1, 6, 0, tzinfo=UTC), {"all4@example.com"}),
    (datetime(2026, 11, 1, 12, 0, tzinfo=UTC), {f"design{i}@example.com" for i in range(3)}),
    (datetime(2026, 11, 1, 15, 0, tzinfo=UTC), {"all1@example.com"}),
]


def zoned(engine: Engine) -> store.SubscriberRecipients:
    directory = seed(engine)
    with session_scope(engine) as session:
        for row in session.exec(select(Subscriber)):
            row.time_zone = ZONES.get(row.email)
    build(engine, directory)
    return directory


def sending(directory: store.SubscriberRecipients, local: LocalTime | None = LOCAL) -> Sending:
    return Sending(directory, ENVELOPE, SendOptions(batch_size=2, local=local))


def run(engine: Engine, directory: store.SubscriberRecipients, clock: ManualClock,
        provider: MemoryProvider | None = None) -> tuple[set[str], str]:
    provider = provider or MemoryProvider()
    report = send_issue(engine, 1, provider=provider, sending=sending(directory), clock=clock, top_up=False)
    return {m.to for m in provider.outbox}, report.status


def due_times(engine: Engine) -> dict[int, datetime]:
    with Session(engine) as session:
        return {d.subscriber_id: waves._aware(d.due_at) for d in session.exec(select(DeliveryRow))
                if d.due_at is not None}


def subscriber_id(engine: Engine, address: str) -> int:
    with Session(engine) as session:
        found = session.exec(select(Subscriber.id).where(Subscriber.email == address)).one()
    assert found is not None
    return found


def test_each_wave_goes_at_its_readers_local_seven_and_the_issue_is_sent_with_the_last(engine: Engine) -> None:
    directory, clock = zoned(engine), ManualClock(START)
    assert run(engine, directory, clock) == (set(), "sending")  # nobody's 07:00 yet: the send returns at once
    by_subscriber = due_times(engine)
    for when, readers in WAVES:
        assert {by_subscriber[subscriber_id(engine, r)] for r in readers} == {when}
    for when, readers in WAVES:
        clock.set(when - timedelta(minutes=1))
        assert run(engine, directory, clock)[0] == set()  # a minute early: not yet
        clock.set(when)
        sent, status = run(engine, directory, clock)
        assert sent == readers
        assert status == ("sent" if when == WAVES[-1][0] else "sending")
    assert Counter(status for status in _statuses(engine)) == Counter({"submitted": 10})


def test_the_waves_are_listed_with_their_zones_and_what_has_gone(engine: Engine) -> None:
    directory, clock = zoned(engine), ManualClock(START)
    run(engine, directory, clock)
    clock.set(WAVES[1][0])
    run(engine, directory, clock)
    found = waves.with_zones(waves.waves(engine, 1), [*ZONES.values(), None], LOCAL)
    assert [(w.at, w.readers, w.queued, w.zones) for w in found] == [
        (WAVES[0][0], 2, 0, 1), (WAVES[1][0], 1, 0, 1), (WAVES[2][0], 2, 2, 1), (WAVES[3][0], 1, 1, 1),
        (WAVES[4][0], 3, 3, 1), (WAVES[5][0], 1, 1, 1)]
    assert [w.gone for w in found] == [True, True, False, False, False, False]


def test_a_reader_who_changes_zone_moves_wave_and_one_who_leaves_gets_nothing(engine: Engine) -> None:
    directory, clock = zoned(engine), ManualClock(START)
    run(engine, directory, clock)
    mover, leaver = subscriber_id(engine, "all1@example.com"), subscriber_id(engine, "all0@example.com")
    signup.update_preferences(engine, mover, categories=[], free_only=False, pause=0, time_zone="Asia/Kolkata",
                              local=LOCAL, now=clock.now())
    assert service.unsubscribe(engine, leaver, channel="page")
    assert due_times(engine)[mover] == WAVES[2][0]  # Kolkata's 07:00, no longer Los Angeles'
    clock.set(WAVES[0][0])
    assert run(engine, directory, clock)[0] == {"free@example.com"}
    clock.set(WAVES[2][0])
    assert run(engine, directory, clock)[0] == {"all1@example.com", "all2@example.com", "all3@example.com",
                                                "writing@example.com"}
    with pytest.raises(SubscriberError, match="'Moon/Base' is not an IANA time zone name"):
        signup.update_preferences(engine, mover, categories=[], free_only=False, pause=0, time_zone="Moon/Base")


def test_a_restart_between_waves_picks_up_the_next_and_sends_nothing_twice(engine: Engine) -> None:
    directory, clock = zoned(engine), ManualClock(START)
    first = MemoryProvider()
    clock.set(WAVES[0][0])
    assert run(engine, directory, clock, first) == (WAVES[0][1], "sending")
    # The process dies; hours later a new one (new provider, new clock reading) runs the send again.
    clock.set(WAVES[3][0] + timedelta(minutes=5))
    later = MemoryProvider()
    sent, status = run(engine, directory, clock, later)
    assert sent == WAVES[1][1] | WAVES[2][1] | WAVES[3][1] and status == "sending"
    assert not {m.to for m in first.outbox} & sent


def test_a_paused_issue_holds_its_waves_until_resumed(engine: Engine) -> None:
    directory, clock = zoned(engine), ManualClock(START)
    clock.set(WAVES[0][0])
    run(engine, directory, clock)
    desk.pause(engine, 1)
    clock.set(WAVES[-1][0] + timedelta(hours=1))
    assert worker.issues_to_send(engine, clock=clock) == []  # the workers and the minute job leave it alone
    before = due_times(engine)
    desk.resume(engine, 1, recipients=directory, local=LOCAL, clock=clock)
    assert due_times(engine) == before  # held waves keep their times: all are due now
    assert worker.issues_to_send(engine, clock=clock) == [1]
    sent, status = run(engine, directory, clock)
    assert len(sent) == 8 and status == "sent"


def test_workers_send_only_what_has_come_due(engine: Engine) -> None:
    directory, clock = zoned(engine), ManualClock(START)
    worker.hand_to_workers(engine, 1, recipients=directory, local=LOCAL, clock=clock)
    assert worker.issues_to_send(engine, clock=clock) == []
    clock.set(WAVES[1][0])
    provider, submitted = MemoryProvider(), [0]
    worker._round(engine, submitted, provider=lambda: provider, sending=sending(directory), stop=threading.Event(),
                  poll=0.01, clock=clock)
    assert {m.to for m in provider.outbox} == WAVES[0][1] | WAVES[1][1] and submitted[0] == 3


def test_now_mode_sends_everyone_at_once_as_before(engine: Engine) -> None:
    directory, clock = zoned(engine), ManualClock(START)
    provider = MemoryProvider()
    report = send_issue(engine, 1, provider=provider, sending=sending(directory, None), clock=clock)
    assert (report.submitted, report.status) == (10, "sent")
    assert set(due_times(engine).values()) == {START}


def _statuses(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return [d.status for d in session.exec(select(DeliveryRow))]


def test_the_schedulers_minute_job_sends_each_wave_as_it_comes_due(
        engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    seven = (now + timedelta(hours=3)).strftime("%H:%M")  # the readers' send time is three hours away
    settings = env_settings(monkeypatch, tmp_path, database_url, delivery_mode="local", local_send_time=seven)
    seed_this_week(engine, readers=3)
    with session_scope(engine) as session:
        session.exec(select(Subscriber).where(Subscriber.email == "reader0@example.com")).one().time_zone = \
            "Asia/Kathmandu"
    clock = ManualClock(now)
    scheduler_jobs.publish(settings, clock=clock)  # built and started: nobody's send time yet
    assert outbox(settings) == [] and _issue_status(engine) == "sending"
    utc = LocalTime(settings.local_delivery.at, "UTC")  # type: ignore[union-attr]
    kathmandu = utc.due("Asia/Kathmandu", now)
    sent = 0
    for at, readers in sorted([(utc.due(None, now), 2), (kathmandu, 1)]):
        clock.set(at - timedelta(minutes=1))
        scheduler_jobs.send_due(settings, clock=clock)
        assert len(outbox(settings)) == sent  # a minute early: not yet
        clock.set(at)
        scheduler_jobs.send_due(settings, clock=clock)
        sent += readers
        assert len(outbox(settings)) == sent
    assert _issue_status(engine) == "sent"


def _issue_status(engine: Engine) -> str:
    with session_scope(engine) as session:
        return issues.get_issue(session, 1).status
