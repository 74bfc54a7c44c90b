"""Kill a real sending process with SIGKILL at random points, resume, and count what everyone got.

Resend dedupes a reclaimed batch by its idempotency key; Postmark and Mailgun are asked (message search, events
API) what they accepted of it, so the resumed sender sends only the rest: zero duplicates for all three.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from newsletter.db import session_scope
from newsletter.models import DeliveryBatchRow, DeliveryRow
from subscribers import store
from subscribers.models import Subscriber
from tests.conftest import TEST_SECRET_KEY
from tests.newsletter.test_issues import build, seed
from tests.wire_server import DOMAIN, KEY, WireServer

READERS = 800
BATCH = 20
WORKERS = 2
KILLS = 3
LEASE = 2
INDEXING = 0.2  # the wire server's search shows a message this long after accepting it
SEARCH_DELAY = 0.5  # and the senders trust a miss this long after a dead sender's lease ran out


def sender(url: str, provider: str, database_url: str, cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "NEWSLETTER_DATABASE_URL": database_url, "NEWSLETTER_PROVIDER": provider,
        "NEWSLETTER_PROVIDER_BASE_URL": url, "NEWSLETTER_PROVIDER_API_KEY": KEY,
        "NEWSLETTER_SECRET_KEY": TEST_SECRET_KEY, "NEWSLETTER_POSTAL_ADDRESS": "1 Test Street",
        "NEWSLETTER_BATCH_SIZE": str(BATCH), "NEWSLETTER_CONCURRENCY": str(WORKERS),
        "NEWSLETTER_LEASE_SECONDS": str(LEASE), "NEWSLETTER_MAX_RETRIES": "2", "NEWSLETTER_MAILGUN_DOMAIN": DOMAIN,
        "NEWSLETTER_RECONCILE_DELAY_SECONDS": str(SEARCH_DELAY),
    }
    with log.open("ab") as errors:
        return subprocess.Popen([sys.executable, "-m", "newsletter", "issue", "send", "1"], cwd=cwd, env=env,
                                stdout=subprocess.DEVNULL, stderr=errors)


@pytest.mark.parametrize("provider", ["resend", "postmark", "mailgun"])
def test_sigkill_anywhere_then_resume(provider: str, engine: Engine, database_url: str, tmp_path: Path) -> None:
    directory = seed(engine)
    with session_scope(engine) as session:
        store.add_active(session, [f"crash{i:04d}@example.com" for i in range(READERS - 10)])
    assert build(engine, directory).queued == READERS
    chance = random.Random(f"{provider}-{engine.dialect.name}")
    with WireServer() as server:
        server.state.latency, server.state.indexing_delay = 0.03, INDEXING
        for _ in range(KILLS):
            before = len(server.state.requests)
            process = sender(server.url, provider, database_url, tmp_path, tmp_path / "killed.log")
            deadline = time.monotonic() + 30
            while len(server.state.requests) == before and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(chance.uniform(0.0, 0.4))  # somewhere mid-send
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
        time.sleep(LEASE + 0.5)  # the killed senders' leases expire
        final = sender(server.url, provider, database_url, tmp_path, tmp_path / "final.log")
        final.wait(timeout=120)
        assert final.returncode == 0, (tmp_path / "final.log").read_text()
        received = server.by_recipient()
    with Session(engine) as session:
        rows = list(session.exec(select(DeliveryRow)))
    assert Counter(row.status for row in rows) == Counter({"submitted": READERS})
    assert len({row.subscriber_id for row in rows}) == READERS  # exactly one delivery each, none lost
    assert len(received) == READERS  # everyone got it
    # Resend: the reclaimed batch reuses its idempotency key; the others: it is reconciled before it is resent.
    assert sum(count - 1 for count in received.values()) == 0


@pytest.mark.parametrize("provider", ["resend", "postmark", "mailgun"])
def test_kill_then_a_reader_of_the_batch_in_flight_unsubscribes(provider: str, engine: Engine, database_url: str,
                                                                 tmp_path: Path) -> None:
    """The batch that reached the service shrinks before it is taken back. Resend gets the very same request
    (same key, same bytes: zero duplicates, the leaver included once); Postmark and Mailgun are asked first, so
    what they have (the leaver's message included) is recorded submitted and nothing is sent twice."""
    directory = seed(engine)
    with session_scope(engine) as session:
        store.add_active(session, [f"leave{i:03d}@example.com" for i in range(50)])
    assert build(engine, directory).queued == 60
    with WireServer() as server:
        server.state.latency = 5  # no answer comes before the kill
        server.state.indexing_delay = INDEXING
        process = sender(server.url, provider, database_url, tmp_path, tmp_path / "killed.log")
        deadline = time.monotonic() + 60
        while not server.state.received and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        server.state.latency = 0
        assert server.state.received, (tmp_path / "killed.log").read_text()
        leaver = sorted(item.to for item in server.state.received)[0]
        with session_scope(engine) as session:
            session.exec(select(Subscriber).where(Subscriber.email == leaver)).one().status = "unsubscribed"
        table = DeliveryBatchRow.__table__  # type: ignore[attr-defined]
        with engine.begin() as connection:  # the killed sender's leases run out (instead of waiting for them)
            connection.execute(update(table).where(table.c.lease_until.is_not(None))
                               .values(lease_until=datetime.now(UTC) - timedelta(seconds=1)))
        final = sender(server.url, provider, database_url, tmp_path, tmp_path / "final.log")
        final.wait(timeout=120)
        assert final.returncode == 0, (tmp_path / "final.log").read_text()
        received = server.by_recipient()
    assert len(received) == 60 and received[leaver] == 1
    duplicates = sum(count - 1 for count in received.values())
    with Session(engine) as session:
        rows = Counter(row.status for row in session.exec(select(DeliveryRow)))
    assert duplicates == 0
    assert rows == Counter({"submitted": 60})  # the leaver's message was in the request the service kept
