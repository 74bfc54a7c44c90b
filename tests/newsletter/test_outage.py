"""A database outage mid-send: workers and the scheduler wait it out and finish; `issue send` says so clearly.

Each test stops a throwaway PostgreSQL of its own (``tests/pg_throwaway.py``), never the shared one.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlmodel
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError

import scheduler
from newsletter import migrate, outage
from newsletter.config import Settings
from newsletter.db import make_engine, session_scope
from newsletter.deliveries import TABLE
from newsletter.errors import DatabaseUnavailable
from newsletter.models import IssueRow
from newsletter.worker import hand_to_workers
from subscribers import store
from tests.conftest import ROOT, TEST_SECRET_KEY
from tests.newsletter.test_issues import build, seed
from tests.pg_throwaway import ThrowawayPostgres, throwaway_postgres, throwaway_server
from tests.scheduling import env_settings, outbox, seed_this_week
from tests.test_scheduler import _miss_the_run
from tests.wire_server import KEY, WireServer

__all__ = ["throwaway_postgres", "throwaway_server"]  # fixtures
READERS = 200
DOWN = "is unavailable"
BACK = "is back after"
SECRET = TEST_SECRET_KEY


@pytest.fixture
def pg(throwaway_postgres: ThrowawayPostgres) -> Iterator[tuple[ThrowawayPostgres, str, Engine]]:
    """A fresh, migrated database on the throwaway server: (server, url, engine)."""
    url = throwaway_postgres.new_database()
    engine = make_engine(url)
    migrate.upgrade(engine)
    yield throwaway_postgres, url, engine
    engine.dispose()


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 30.0) -> None:
    """Poll ``condition`` (it reads another process's progress) until it holds, or fail naming ``what``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def submitted(engine: Engine) -> int:
    """Submitted deliveries; 0 while the database is down (the caller is waiting for it anyway)."""
    try:
        with engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(TABLE)
                                          .where(TABLE.c.status == "submitted")).scalar_one())
    except DBAPIError as exc:
        if outage.is_outage(exc):
            return 0
        raise


def outage_in_the_middle(server: ThrowawayPostgres, engine: Engine, log: Path, process: subprocess.Popen[bytes]
                         ) -> None:
    """Stop the database now, and start it again once the process said it noticed."""
    server.stop()
    wait_for(lambda: DOWN in log.read_text(errors="replace") or process.poll() is not None, "the outage line")
    time.sleep(1.0)  # a few retries with the small backoff cap, which must not add lines
    server.start()
    wait_for(lambda: submitted(engine) >= READERS or process.poll() is not None, "the rest of the issue", 45)


def assert_sent_once_each(engine: Engine) -> None:
    """Every reader's one delivery submitted, and the issue sent."""
    with engine.connect() as connection:
        rows = [(r[0], r[1]) for r in connection.execute(select(TABLE.c.subscriber_id, TABLE.c.status))]
    with session_scope(engine) as session:
        status = session.exec(sqlmodel.select(IssueRow.status)).one()
    assert Counter(s for _, s in rows) == Counter({"submitted": READERS}) and status == "sent"
    assert len({subscriber for subscriber, _ in rows}) == READERS


def assert_one_file_each(folder: Path) -> None:
    """One .eml per reader in the file provider's outbox."""
    files = sorted(folder.rglob("*.eml"))
    assert len(files) == READERS
    assert len({f.name.split("-", 1)[1] for f in files}) == READERS  # one address per file, none twice


def assert_one_outage_logged(text: str) -> None:
    """One line when the database went away, one when it came back, and no traceback."""
    assert text.count(DOWN) == 1 and text.count(BACK) == 1, text
    assert "Traceback" not in text, text
    assert "postgres:" not in text  # no password in the URL (and none was set here)


def test_a_worker_rides_out_a_database_outage_and_finishes_the_issue(
        pg: tuple[ThrowawayPostgres, str, Engine], tmp_path: Path) -> None:
    server, url, engine = pg
    directory = seed(engine)
    with session_scope(engine) as session:
        store.add_active(session, [f"reader{i:03d}@example.com" for i in range(READERS - 10)])
    number = build(engine, directory).number
    assert number is not None and hand_to_workers(engine, number, recipients=directory) == READERS
    log = tmp_path / "worker.log"
    with WireServer() as service:
        service.state.latency = 0.5  # the database goes away while batches are at the service
        env = os.environ | {
            "NEWSLETTER_DATABASE_URL": url, "NEWSLETTER_PROVIDER": "postmark",
            "NEWSLETTER_PROVIDER_BASE_URL": service.url, "NEWSLETTER_PROVIDER_API_KEY": KEY,
            "NEWSLETTER_SECRET_KEY": SECRET, "NEWSLETTER_POSTAL_ADDRESS": "1 Test Street",
            "NEWSLETTER_BATCH_SIZE": "10", "NEWSLETTER_CONCURRENCY": "2", "NEWSLETTER_LEASE_SECONDS": "15",
            "NEWSLETTER_WORKER_POLL_SECONDS": "0.2", "NEWSLETTER_DATABASE_RETRY_SECONDS": "0.5",
        }
        with log.open("wb") as sink:
            process = subprocess.Popen([sys.executable, "-m", "newsletter", "worker"], env=env, cwd=tmp_path,
                                       stdout=sink, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: len(service.state.requests) >= 4, "the first batches")
            outage_in_the_middle(server, engine, log, process)
            assert process.poll() is None, log.read_text()  # still up
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0, log.read_text()
        finally:
            if process.poll() is None:
                process.kill()
        received = service.by_recipient()
    assert_one_outage_logged(log.read_text())
    assert_sent_once_each(engine)
    assert len(received) == READERS and set(received.values()) == {1}  # the batches in flight were not resent


def test_the_schedulers_send_rides_out_a_database_outage(
        pg: tuple[ThrowawayPostgres, str, Engine], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server, url, engine = pg
    settings = env_settings(monkeypatch, tmp_path, url, batch_size=10, concurrency=1, rate_limit=40,
                            lease_seconds=3, database_retry_seconds=0.5)
    seed_this_week(engine, readers=READERS)
    _miss_the_run(settings, engine, late=timedelta(minutes=5))  # the publish job is due the moment it starts
    log = tmp_path / "scheduler.log"
    with log.open("wb") as sink:
        process = subprocess.Popen([sys.executable, str(ROOT / "scheduler.py")], stdout=sink,
                                   stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: submitted(engine) >= 40, "the first batches")
        outage_in_the_middle(server, engine, log, process)
        assert process.poll() is None, log.read_text()  # the scheduler stays up
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
    assert_one_outage_logged(log.read_text())
    assert_sent_once_each(engine)
    assert_one_file_each(Path(settings.outbox_dir))
    assert len(outbox(settings)) == READERS


def run_command(command: list[str], url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"NEWSLETTER_DATABASE_URL": url, "NEWSLETTER_SECRET_KEY": SECRET,
                        "NEWSLETTER_POSTAL_ADDRESS": "1 Test Street",
                        "NEWSLETTER_OUTBOX_DIR": str(cwd / "out")}
    return subprocess.run([sys.executable, *command], env=env, cwd=cwd, capture_output=True, text=True, timeout=60,
                          check=False)


SEND = ["-m", "newsletter", "issue", "send", "1"]


@pytest.mark.parametrize(("command", "advice"), [
    (SEND, "run `newsletter issue send 1` again once it is back"),
    (["-m", "newsletter", "worker"], "start the worker again once it is back"),
    ([str(ROOT / "scheduler.py")], "start the scheduler again once it is back"),
], ids=["issue-send", "worker", "scheduler"])
def test_a_command_against_a_stopped_database_says_which_one_in_one_line(
        command: list[str], advice: str, pg: tuple[ThrowawayPostgres, str, Engine], tmp_path: Path) -> None:
    server, url, _ = pg
    with_password = url.replace("postgres@", "postgres:hunter2-secret@")
    server.stop()
    done = run_command(command, with_password, tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stdout + done.stderr, done.stderr
    assert "hunter2" not in lines[0], lines[0]
    if lines[0].startswith("time="):  # the scheduler says it in its log line (newsletter.logs): its msg field
        lines = [dict(field.split("=", 1) for field in shlex.split(lines[0]))["msg"]]
    assert url in lines[0], lines[0]  # the database named, its password not
    assert "is unavailable" in lines[0] and lines[0].endswith(advice), lines[0]


def test_issue_send_with_an_unreachable_sqlite_file_says_which_one(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'missing-folder' / 'newsletter.db'}"
    done = run_command(SEND, url, tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert url in lines[0] and "unable to open database file" in lines[0], lines[0]


def test_a_locked_sqlite_file_is_an_outage_named_by_its_url(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    url = f"sqlite:///{path}"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.execute("BEGIN EXCLUSIVE")  # another process is writing
    impatient = create_engine(url, connect_args={"timeout": 0.1})  # the real busy timeout is 30 s
    try:
        with pytest.raises(DatabaseUnavailable, match="is locked") as caught, outage.reported(url), \
                impatient.begin() as connection:
            connection.exec_driver_sql("INSERT INTO t VALUES (1)")
    finally:
        holder.close()
        impatient.dispose()
    assert url in str(caught.value)


TICKS: list[float] = []


def tick() -> None:
    """A job that needs no database: it shows whether the scheduler's own loop is still running."""
    TICKS.append(time.monotonic())


def test_the_schedulers_job_store_waits_out_an_outage_and_keeps_scheduling(
        pg: tuple[ThrowawayPostgres, str, Engine], make_settings: Callable[..., Settings],
        caplog: pytest.LogCaptureFixture) -> None:
    server, url, engine = pg
    caplog.set_level(logging.INFO, logger="newsletter.database")
    settings = make_settings(database_url=url, database_retry_seconds=0.3)
    built = scheduler.build_scheduler(settings, engine)
    built.start()
    built.add_job("tests.newsletter.test_outage:tick", IntervalTrigger(seconds=0.2), id="tick")
    try:
        wait_for(lambda: len(TICKS) >= 2, "the first ticks")
        server.stop()  # the loop reads and stores the job's run times in this database several times a second
        wait_for(lambda: DOWN in caplog.text, "the outage line")
        time.sleep(1.0)
        server.start()
        wait_for(lambda: BACK in caplog.text, "the recovery line")
        resumed = time.monotonic()
        wait_for(lambda: sum(t > resumed for t in TICKS) >= 3, "ticks after the outage")
    finally:
        built.shutdown(wait=True)
    assert caplog.text.count(DOWN) == 1 and caplog.text.count(BACK) == 1, caplog.text
    assert "Error getting due jobs" not in caplog.text and "Traceback" not in caplog.text


def test_a_database_bug_is_not_mistaken_for_an_outage(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    engine = make_engine(url)
    try:
        with pytest.raises(OperationalError, match="no such table"), outage.reported(url), engine.connect() as c:
            c.exec_driver_sql("SELECT * FROM missing_table")  # a bug stays loud, with its traceback
    finally:
        engine.dispose()
