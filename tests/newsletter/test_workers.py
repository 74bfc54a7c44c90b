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
        # The wire server finds what it accepted at once, so a batch taken back from the killed worker may trust a
        # miss after a second instead of Postmark's ten minutes (and be sent, not wait out the test).
        "NEWSLETTER_RECONCILE_DELAY_SECONDS": "1",
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
    assert number is not None and hand_to_workers(engine, number, recipients=directory) == READERS
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


def test_a_worker_waits_out_a_provider_outage_instead_of_stopping(engine: Engine) -> None:
    """The service answers 503 for a while: the worker keeps polling and finishes the issue; only SIGTERM stops it."""
    import threading

    from newsletter import worker
    from newsletter.dispatch import Envelope, Sending, SendOptions
    from newsletter.providers.postmark import PostmarkProvider
    from tests.wire_server import Fault

    directory = seed(engine)
    number = build(engine, directory).number
    assert number is not None and hand_to_workers(engine, number, recipients=directory) == 10
    envelope = Envelope("Verdicts <v@news.example.com>", "Weekly AI Tool Verdicts", "news.example.com",
                        "https://app.example.com")
    stop = threading.Event()
    with WireServer() as server:
        server.state.faults.extend([Fault(503)] * 3)  # three rounds in a row find the service down
        thread = threading.Thread(target=worker.run, args=(engine,), daemon=True, kwargs={
            "provider": lambda: PostmarkProvider(api_key=KEY, base_url=server.url, max_retries=0),
            "sending": Sending(directory, envelope, SendOptions(batch_size=3)), "stop": stop, "poll": 0.05})
        thread.start()
        deadline = time.monotonic() + 30
        while count(engine, "submitted") < 10 and time.monotonic() < deadline and thread.is_alive():
            time.sleep(0.05)
        still_running = thread.is_alive() and not stop.is_set()
        stop.set()
        thread.join(timeout=30)
        received = server.by_recipient()
    assert still_running, "the worker stopped on a provider outage"
    assert count(engine, "submitted") == 10
    assert sorted(received.values()) == [1] * 10
