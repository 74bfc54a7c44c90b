"""A real ``newsletter worker`` process beats, ``newsletter doctor`` sees it alive, and SIGTERM still stops it
cleanly; both databases."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from newsletter import heartbeat
from newsletter.clock import ManualClock
from newsletter.doctor import Context
from newsletter.doctor.database import workers
from tests.conftest import TEST_SECRET_KEY


def test_a_running_worker_is_seen_alive(engine: Engine, database_url: str, tmp_path: Path,
                                        context: Callable[..., Context]) -> None:
    env = os.environ | {"NEWSLETTER_DATABASE_URL": database_url, "NEWSLETTER_PROVIDER": "file",
                        "NEWSLETTER_SECRET_KEY": TEST_SECRET_KEY, "NEWSLETTER_POSTAL_ADDRESS": "1 Test Street",
                        "NEWSLETTER_HEARTBEAT_SECONDS": "0.2", "NEWSLETTER_WORKER_POLL_SECONDS": "0.2"}
    started = datetime.now(UTC)
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "newsletter", "worker"], env=env, cwd=tmp_path,
                                   stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not heartbeat.seen_since(engine, started) and time.monotonic() < deadline:
            time.sleep(0.1)
        settings = context(database_url=database_url, send_with_workers=True, heartbeat_seconds=0.2).settings
        finding = workers(engine, settings, ManualClock(datetime.now(UTC)).now())
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
    assert finding.status == "pass" and f":{process.pid}" in finding.detail, log.read_text()
    assert code == 0, log.read_text()
    # One logfmt line per event at NEWSLETTER_LOG_LEVEL (INFO by default), not logging's own format.
    events = [line for line in log.read_text().splitlines() if line.startswith("time=")]
    assert any('msg="worker started"' in line and "provider=file" in line for line in events), log.read_text()
    assert any('msg="worker stopped"' in line for line in events), log.read_text()
