"""A throwaway PostgreSQL server that a test may stop and start: never the shared one on 5432.

``initdb`` into a temporary folder, then ``pg_ctl`` on a free port of 127.0.0.1. PostgreSQL refuses to run as
root, so as root the binaries run as the ``postgres`` user. The ``throwaway_postgres`` fixture (import it into
a test module) skips without the binaries, fails in CI, and always stops the server and removes its folder.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from newsletter.db import make_engine


def binaries() -> Path | None:
    """The folder of the newest installed PostgreSQL's ``initdb`` and ``pg_ctl``, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("pg_ctl") else None


def missing(bin_dir: Path | None) -> str | None:
    """Why no throwaway server can run here, or None."""
    if bin_dir is None:
        return "install PostgreSQL (initdb and pg_ctl, e.g. under /usr/lib/postgresql/*/bin)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "as root, PostgreSQL needs a `postgres` user to run as"
    return None


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ThrowawayPostgres:
    """One PostgreSQL cluster in its own folder and port: ``start()``, ``stop()``, ``url_for(database)``."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="throwaway-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._owner = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
        if self._owner is not None:
            os.chown(self.root, self._owner.pw_uid, self._owner.pw_gid)

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin_dir / tool), *args]
        if self._owner is not None:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr or done.stdout}\n{self.server_log()}")

    def server_log(self) -> str:
        """What the server wrote, for failure messages."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def create(self) -> None:
        """Make the cluster: trust auth for the ``postgres`` user, no fsync (a test's data need not survive)."""
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")

    def stop(self) -> None:
        """Stop the server (fast: open connections are cut, as in a real outage)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    def running(self) -> bool:
        """Whether the server's postmaster is up."""
        return (self.data / "postmaster.pid").exists()

    def url_for(self, database: str, *, password: str | None = None) -> str:
        """The URL of ``database`` on this server (any password is accepted: trust auth)."""
        login = f"postgres:{password}" if password else "postgres"
        return f"postgresql://{login}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """Create a fresh database and return its URL."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        admin = make_engine(self.url_for("postgres"), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                connection.execute(text(f"CREATE DATABASE {name}"))
        finally:
            admin.dispose()
        return self.url_for(name)

    def remove(self) -> None:
        """Stop the server if it runs (immediately) and delete its folder."""
        if self.running():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def throwaway_server() -> Iterator[ThrowawayPostgres]:
    """One throwaway server per test module; skipped without PostgreSQL's binaries, except in CI."""
    bin_dir = binaries()
    reason = missing(bin_dir)
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the database outage tests: {reason}")
        pytest.skip(f"the database outage tests need a throwaway PostgreSQL: {reason}")
    assert bin_dir is not None
    server = ThrowawayPostgres(bin_dir)
    try:
        server.create()
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture
def throwaway_postgres(throwaway_server: ThrowawayPostgres) -> Iterator[ThrowawayPostgres]:
    """The module's throwaway server, running when the test starts, whatever the previous test left."""
    if not throwaway_server.running():
        throwaway_server.start()
    yield throwaway_server
