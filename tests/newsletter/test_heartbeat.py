"""Worker heartbeats: written at once and then on a beat, read back by time, pruned after a day; both databases."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy.engine import Engine

from newsletter import heartbeat
from newsletter.clock import ManualClock


def test_a_worker_beats_at_once_and_keeps_one_row(engine: Engine) -> None:
    clock = ManualClock()
    start = clock.now()
    with heartbeat.beating(engine, every=0.05, worker="host:1", clock=clock) as name:
        deadline = time.monotonic() + 5
        while not heartbeat.seen_since(engine, start) and time.monotonic() < deadline:
            time.sleep(0.01)
        clock.advance(timedelta(seconds=30))
        moved = clock.now()
        while not heartbeat.seen_since(engine, moved) and time.monotonic() < deadline:
            time.sleep(0.01)
    rows = heartbeat.seen_since(engine, start)
    assert name == "host:1" and [r.worker for r in rows] == ["host:1"]
    assert rows[0].seen_at == moved and rows[0].started_at == start
    assert heartbeat.last_seen(engine) == moved


def test_workers_silent_for_a_day_are_pruned(engine: Engine) -> None:
    clock = ManualClock()
    heartbeat.beat(engine, "old:1", started=clock.now(), now=clock.now())
    later = clock.advance(timedelta(days=1, minutes=1))
    heartbeat.beat(engine, "new:2", started=later, now=later)
    assert [r.worker for r in heartbeat.seen_since(engine, clock.now() - timedelta(days=30))] == ["new:2"]
