"""Four worker processes share one database; one is killed with SIGKILL midway; nothing is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, insert
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from newsletter.models import DeliveryRow
from newsletter.worker import hand_to_workers, issues_to_send
from subscribers.models import Subscriber
from tests.conftest import TEST_SECRET_KEY
from tests.newsletter.test_issues import build, seed
from tests.wire_server import KEY, WireServer

READERS = 20_000
WORKERS = 4
BATCH = 100
CONCURRENCY = 2


def start(url: str, database_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "NEWSLETTER_DATABASE_URL": database_url, "NEWSLETTER_PROVIDER": "postmark",
        "NEWSLETTER_PROVIDER_BASE_URL": url, "NEWSLETTER_PROVIDER_API_KEY": KEY,
        "NEWSLETTER_SECRET_KEY": TEST_SECRET_KEY, "NEWSLETTER_POSTAL_ADDRESS": "1 Test Street",
        "NEWSLETTER_BATCH_SIZE": str(BATCH), "NEWSLETTER_CONCURRENCY": str(CONCURRENCY),
        "NEWSLETTER_LEASE_SECONDS": "3", "NEWSLETTER_WORKER_POLL_SECONDS": "0.2",
    }
    with log.open("wb") as errors:
        return subprocess.Popen([sys.executable, "-m", "newsletter", "worker"], env=env, cwd=log.parent,
                                stdout=errors, stderr=subprocess.STDOUT)


def count(engine: Engine, status: str) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(DeliveryRow).where(DeliveryRow.status == status)).one())


def test_four_workers_one_killed(engine: Engine, database_url: str, tmp_path: Path) -> None:
    directory = seed(engine)
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(insert(Subscriber.__table__), [  # type: ignore[attr-defined]
            {"email": f"w{i:05d}@example.org", "status": "active", "categories": "", "free_only": False,
             "source": "test", "created_at": now, "pause_remaining": 0, "soft_bounces": 0, "erased": False}
            for i in range(READERS - 10)])
    number = build(engine, directory).number
    assert number is not None and hand_to_workers(engine, number, source=directory) == READERS
    assert issues_to_send(engine) == [number]
    with WireServer() as server:
        server.state.latency = 0.01
        workers = [start(server.url, database_url, tmp_path / f"worker{n}.log") for n in range(WORKERS)]
        try:
            deadline = time.monotonic() + 60
            while server.state.recipients < READERS // 4 and time.monotonic() < deadline:
                time.sleep(0.05)
            workers[0].send_signal(signal.SIGKILL)  # midway, batches in flight
            deadline = time.monotonic() + 240
            while count(engine, "submitted") < READERS and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            for process in workers[1:]:
                process.send_signal(signal.SIGTERM)
            codes = [process.wait(timeout=60) for process in workers]
        received = server.by_recipient()
    logs = "\n".join(p.read_text(errors="replace") for p in sorted(tmp_path.glob("worker*.log")))
    assert codes[0] == -signal.SIGKILL and codes[1:] == [0] * (WORKERS - 1), logs  # the rest stop cleanly
    assert count(engine, "submitted") == READERS, logs  # nobody lost
    with Session(engine) as session:
        pairs = session.exec(select(func.count(func.distinct(DeliveryRow.subscriber_id)))).one()
    assert pairs == READERS  # exactly one delivery each
    assert len(received) == READERS
    duplicates = sum(n - 1 for n in received.values())
    assert duplicates <= CONCURRENCY * BATCH  # at most the killed worker's batches in flight
    assert issues_to_send(engine) == []
