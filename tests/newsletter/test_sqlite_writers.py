"""SQLite writers queue in the process: many threads writing at once all get through, none waits in SQLite's busy
handler, and every way a transaction ends lets the next writer in."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from newsletter.db import make_engine

METADATA = MetaData()
NOTES = Table("note", METADATA, Column("id", Integer, primary_key=True), Column("body", String, unique=True))


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """A SQLite file whose writers give up after a fifth of a second: SQLite's busy handler alone, polling with
    sleeps that grow to 100 ms, lets some of many concurrent writers fail within that."""
    found = make_engine(f"sqlite:///{tmp_path / 'gate.db'}", busy_timeout=0.2)
    METADATA.create_all(found)
    yield found
    found.dispose()


def test_many_threads_writing_at_once_all_get_through(engine: Engine) -> None:
    failures: list[BaseException] = []
    start = threading.Barrier(12)

    def writer(n: int) -> None:
        start.wait()
        for k in range(40):
            try:
                with engine.begin() as connection:
                    connection.execute(insert(NOTES).values(body=f"{n}-{k}"))
                    time.sleep(0.0005)  # a transaction that holds SQLite's lock for a moment, as a real one does
                    connection.execute(select(func.count()).select_from(NOTES)).scalar_one()
            except BaseException as exc:  # collected and asserted below
                failures.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(NOTES)).scalar_one() == 12 * 40


def test_a_second_writer_waits_for_the_first_to_commit(engine: Engine) -> None:
    holding, order = threading.Event(), []

    def first() -> None:
        with engine.begin() as connection:
            connection.execute(insert(NOTES).values(body="first"))
            holding.set()
            time.sleep(0.1)
            order.append("first committed")

    thread = threading.Thread(target=first)
    thread.start()
    holding.wait()
    with engine.begin() as connection:
        assert connection.execute(select(func.count()).select_from(NOTES)).scalar_one() == 0  # reads pass by
        connection.execute(insert(NOTES).values(body="second"))
        order.append("second wrote")
    thread.join()
    assert order == ["first committed", "second wrote"]


def another_thread_writes(engine: Engine) -> bool:
    """Whether a writer on another thread commits the row "next" within 2 s."""
    done = threading.Event()

    def next_writer() -> None:
        with engine.begin() as other:
            other.execute(insert(NOTES).values(body="next"))
        done.set()

    threading.Thread(target=next_writer).start()
    return done.wait(2)


@pytest.mark.parametrize("ending", ["raises", "fails in SQLite", "rolled back", "closed"])
def test_every_end_of_a_transaction_lets_the_next_writer_in(engine: Engine, ending: str) -> None:
    with engine.begin() as connection:
        connection.execute(insert(NOTES).values(body="taken"))
    if ending == "raises":
        with pytest.raises(RuntimeError), engine.begin() as connection:
            connection.execute(insert(NOTES).values(body="a"))
            raise RuntimeError("the caller's own failure")
    elif ending == "fails in SQLite":
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(insert(NOTES).values(body="taken"))
    elif ending == "rolled back":
        with engine.connect() as connection:
            connection.execute(insert(NOTES).values(body="b"))
            connection.rollback()
    else:
        connection = engine.connect()
        connection.execute(insert(NOTES).values(body="c"))
        connection.close()  # returned to the pool with the transaction open: the pool rolls it back
    assert another_thread_writes(engine), f"the writer after one that {ending} was kept out"
    with engine.connect() as connection:
        assert connection.execute(select(NOTES.c.body).order_by(NOTES.c.id)).scalars().all() == ["taken", "next"]


def test_ddl_and_autocommit_statements_hold_nothing(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("CREATE TABLE other (id INTEGER PRIMARY KEY)"))  # no transaction opened
        connection.commit()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(insert(NOTES).values(body="autocommitted"))
        assert another_thread_writes(engine), "an autocommitted write kept its connection holding the writers' lock"


def test_a_writer_kept_out_too_long_hears_database_is_locked(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(insert(NOTES).values(body="held"))
        failed: list[BaseException] = []

        def second() -> None:
            try:
                with engine.begin() as other:
                    other.execute(insert(NOTES).values(body="late"))
            except OperationalError as exc:
                failed.append(exc)

        thread = threading.Thread(target=second)
        thread.start()
        thread.join(5)
    assert len(failed) == 1 and isinstance(failed[0].orig, sqlite3.OperationalError)
    assert "database is locked" in str(failed[0])


WRITER = """
import sys
from sqlalchemy import Column, Integer, MetaData, String, Table, insert
from newsletter.db import make_engine
notes = Table("note", MetaData(), Column("id", Integer, primary_key=True), Column("body", String, unique=True))
engine = make_engine(sys.argv[1], busy_timeout=float(sys.argv[2]))
failed = 0
for k in range(int(sys.argv[3])):
    try:
        with engine.begin() as connection:
            connection.execute(insert(notes).values(body=f"{sys.argv[4]}-{k}"))
    except Exception as exc:
        failed += 1
        print(exc, file=sys.stderr)
print(failed)
"""


def write_from_processes(url: str, count: int, writes: int, busy_timeout: float) -> list[subprocess.CompletedProcess[str]]:
    """``count`` processes, each making ``writes`` write transactions at once; their finished runs."""
    started = [subprocess.Popen([sys.executable, "-c", WRITER, url, str(busy_timeout), str(writes), f"p{n}"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in range(count)]
    return [subprocess.CompletedProcess(p.args, p.wait(60), *p.communicate()) for p in started]


def test_writers_in_several_processes_queue_on_the_lock_beside_the_database(engine: Engine, tmp_path: Path) -> None:
    url = str(engine.url)
    runs = write_from_processes(url, 3, 60, busy_timeout=5)
    assert [(run.returncode, run.stdout.strip()) for run in runs] == [(0, "0")] * 3, [run.stderr for run in runs]
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(NOTES)).scalar_one() == 180
    assert (tmp_path / "gate.db-writers.lock").exists()


def test_a_writer_in_another_process_waits_for_the_lock_not_for_sqlite(engine: Engine, tmp_path: Path) -> None:
    lock = os.open(tmp_path / "gate.db-writers.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process's writer is writing (SQLite's own lock is free)
        [run] = write_from_processes(str(engine.url), 1, 1, busy_timeout=0.3)
        assert run.stdout.strip() == "1" and "database is locked" in run.stderr
        fcntl.flock(lock, fcntl.LOCK_UN)
        [run] = write_from_processes(str(engine.url), 1, 1, busy_timeout=0.3)
        assert run.stdout.strip() == "0", run.stderr
    finally:
        os.close(lock)
