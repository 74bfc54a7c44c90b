"""Kill a real sending process with SIGKILL at random points, resume, and count what everyone got."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from newsletter.db import session_scope
from newsletter.models import DeliveryRow
from subscribers import store
from tests.conftest import TEST_SECRET_KEY
from tests.newsletter.test_issues import build, seed
from tests.wire_server import KEY, WireServer

READERS = 800
BATCH = 20
WORKERS = 2
KILLS = 3
LEASE = 2


def sender(url: str, provider: str, database_url: str, cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "NEWSLETTER_DATABASE_URL": database_url, "NEWSLETTER_PROVIDER": provider,
        "NEWSLETTER_PROVIDER_BASE_URL": url, "NEWSLETTER_PROVIDER_API_KEY": KEY,
        "NEWSLETTER_SECRET_KEY": TEST_SECRET_KEY, "NEWSLETTER_POSTAL_ADDRESS": "1 Test Street",
        "NEWSLETTER_BATCH_SIZE": str(BATCH), "NEWSLETTER_CONCURRENCY": str(WORKERS),
        "NEWSLETTER_LEASE_SECONDS": str(LEASE), "NEWSLETTER_MAX_RETRIES": "2",
    }
    with log.open("ab") as errors:
        return subprocess.Popen([sys.executable, "-m", "newsletter", "issue", "send", "1"], cwd=cwd, env=env,
                                stdout=subprocess.DEVNULL, stderr=errors)


@pytest.mark.parametrize("provider", ["resend", "postmark"])
def test_sigkill_anywhere_then_resume(provider: str, engine: Engine, database_url: str, tmp_path: Path) -> None:
    directory = seed(engine)
    with session_scope(engine) as session:
        store.add_active(session, [f"crash{i:04d}@example.com" for i in range(READERS - 10)])
    assert build(engine, directory).queued == READERS
    chance = random.Random(f"{provider}-{engine.dialect.name}")
    with WireServer() as server:
        server.state.latency = 0.03
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
    duplicates = sum(count - 1 for count in received.values())
    if provider == "resend":
        assert duplicates == 0  # the reclaimed batch reuses its idempotency key
    else:
        assert duplicates <= KILLS * WORKERS * BATCH  # at most the batches in flight at each kill
