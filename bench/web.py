"""Web load benchmark: N requests from C concurrent clients against `newsletter serve` on 127.0.0.1.

    python bench/web.py                                   # healthz (baseline) and redirect on SQLite
    python bench/web.py --database-url postgresql://postgres@127.0.0.1:5432/test
    python bench/web.py --cases redirect --requests 5000 --concurrency 100 --track

The server is started as a subprocess (`python -m newsletter serve`) on a seeded database: the demo catalog,
``--readers`` active subscribers and this week's issue built and marked submitted a day ago (so no click is
taken for a scanner's). Each case is a name in ``CASES``: how its requests are made, what answer is right, and
what the database must hold afterwards. More routes (unsubscribes, sign-ups, preferences, webhooks) are more
entries there.

* ``healthz``: ``GET /healthz``, which touches nothing: the server's own ceiling, measured in the same run as the
  baseline the other cases are compared to.
* ``redirect``: ``GET /r/{issue}/{link}`` over the issue's links (with ``--track``, each with a reader's token),
  as a browser; afterwards the click table must hold exactly one click per redirect (no event lost, none
  doubled), checked once the writer has caught up and again after the server stopped.

Bounded: every case stops after its requests or ``--time-limit`` seconds, whichever comes first. Prints requests
per second, p50 and p99 latency and errors per case, then each case's throughput as a ratio of the baseline's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SECRET = "Xb5oMwV2c8RkQz-t1NyLJf7uHq3GdPaE4sWn9KiYv0T"
SITE = "https://site.example.com/compare/"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


@dataclass
class World:
    """What the cases share: the server's base URL, the database, the seeded issue and its readers' tokens."""

    base: str
    database_url: str
    number: int = 0
    links: list[int] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Case:
    """A named load: the i-th request's path, the status that is right, and a check of the database after."""

    path: Callable[[World, int], str]
    status: int
    requests: int
    verify: Callable[[World, int], str] | None = None


def redirect_path(world: World, i: int) -> str:
    """Every link of the issue in turn; with tokens, each request as another reader."""
    path = f"/r/{world.number}/{world.links[i % len(world.links)]}"
    return f"{path}?r={world.tokens[i % len(world.tokens)]}" if world.tokens else path


def clicks_written(world: World, expected: int) -> str:
    """Wait (up to 10 s) for the writer to catch up; what the click table holds against what was answered."""
    start = time.monotonic()
    while (held := count_clicks(world.database_url)) < expected and time.monotonic() - start < 10:
        time.sleep(0.05)
    return f"clicks written: {held} of {expected} redirects, {1000 * (time.monotonic() - start):.0f} ms after the load"


CASES: dict[str, Case] = {
    "healthz": Case(lambda world, i: "/healthz", 200, 2_000),
    "redirect": Case(redirect_path, 302, 2_000, clicks_written),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", default=["healthz", "redirect"], choices=sorted(CASES))
    parser.add_argument("--requests", type=int, default=None, help="per case (default: each case's own, 2,000)")
    parser.add_argument("--concurrency", type=int, default=50, help="concurrent clients (default 50)")
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds per case at most")
    parser.add_argument("--readers", type=int, default=2_000, help="active subscribers seeded (default 2,000)")
    parser.add_argument("--track", action="store_true", help="NEWSLETTER_TRACK_READERS=true, tokens in links")
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL (default: a SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        database_url, drop = database(args.database_url, Path(folder))
        try:
            run(args, database_url, Path(folder))
        finally:
            drop()


def run(args: argparse.Namespace, database_url: str, folder: Path) -> None:
    """Seed, serve, load each case, stop the server, check the database, print the figures."""
    port = free_port()
    world = World(f"http://127.0.0.1:{port}", database_url)
    seed(world, args.readers, folder, track=args.track)
    server = start_server(world, folder, track=args.track)
    results: list[tuple[str, dict[str, float]]] = []
    try:
        for name in args.cases:
            case = CASES[name]
            figures = asyncio.run(load(world, case, args.requests or case.requests, args.concurrency, args.time_limit))
            results.append((name, figures))
            print(line(name, figures), flush=True)
            if case.verify is not None:
                print("  " + case.verify(world, int(figures["answered"])), flush=True)
    finally:
        stop_server(server)
    ratios(results)
    print("Figures from a shared machine: compare ratios within one run, not runs with each other.")
    if "redirect" in args.cases:
        expected, held = int(dict(results)["redirect"]["answered"]), count_clicks(database_url)
        print(f"After the server stopped: {held} clicks for {expected} redirects: "
              f"{'none lost, none doubled' if held == expected else 'MISMATCH'}")
        if held != expected:
            raise SystemExit(1)


async def load(world: World, case: Case, requests: int, concurrency: int, limit: float) -> dict[str, float]:
    """``requests`` requests from ``concurrency`` clients, each answered before its client sends the next."""
    latencies: list[float] = []
    errors = [0]
    issued = [0]
    deadline = time.monotonic() + limit
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=world.base, limits=limits, timeout=30, headers={"User-Agent": BROWSER},
                                 follow_redirects=False) as client:
        async def one_client() -> None:
            while issued[0] < requests and time.monotonic() < deadline:
                i = issued[0]
                issued[0] += 1
                start = time.perf_counter()
                try:
                    answer = await client.get(case.path(world, i))
                    ok = answer.status_code == case.status
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - start)
                errors[0] += 0 if ok else 1
        started = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return summary(latencies, errors[0], elapsed, concurrency)


def summary(latencies: list[float], errors: int, elapsed: float, concurrency: int) -> dict[str, float]:
    """Requests per second, p50 and p99 in milliseconds, errors."""
    ordered = sorted(latencies) or [0.0]
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"requests": len(latencies), "answered": len(latencies) - errors, "errors": errors,
            "seconds": elapsed, "rps": len(latencies) / elapsed if elapsed else 0.0, "concurrency": concurrency,
            "p50": 1000 * statistics.median(ordered), "p99": 1000 * p99}


def line(name: str, f: dict[str, float]) -> str:
    return (f"{name:<9} {int(f['requests']):>6,} requests from {int(f['concurrency'])} clients: "
            f"{f['rps']:>8,.0f} req/s  p50 {f['p50']:>7.1f} ms  p99 {f['p99']:>7.1f} ms  errors {int(f['errors'])}")


def ratios(results: list[tuple[str, dict[str, float]]]) -> None:
    found = dict(results)
    if "healthz" not in found:
        return
    for name, figures in results:
        if name != "healthz" and found["healthz"]["rps"]:
            print(f"{name}: {figures['rps'] / found['healthz']['rps']:.2f}× the baseline's requests per second, "
                  f"p99 {figures['p99'] / max(found['healthz']['p99'], 1e-9):.2f}× the baseline's")


def database(url: str | None, folder: Path) -> tuple[str, Callable[[], None]]:
    """A fresh database URL (a SQLite file, or a new PostgreSQL schema) migrated to the head, and how to drop it."""
    from sqlalchemy import text

    from newsletter import migrate
    from newsletter.db import make_engine

    if url is None:
        found = f"sqlite:///{folder / 'bench.db'}"
        engine = make_engine(found)
        migrate.upgrade(engine)
        engine.dispose()
        return found, lambda: None
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = make_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    found = f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    engine = make_engine(found)
    migrate.upgrade(engine)
    engine.dispose()

    def drop() -> None:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
    return found, drop


def values(world: World, folder: Path, *, track: bool) -> dict[str, Any]:
    """The server's settings (as for ``Settings``; ``newsletter serve`` gets them as NEWSLETTER_* variables)."""
    return {"database_url": world.database_url, "secret_key": SECRET, "postal_address": "1 Bench Street",
            "public_url": world.base, "site_url": SITE, "provider": "file", "outbox_dir": str(folder / "out"),
            "track_readers": "true" if track else "false", "log_level": "WARNING"}


def seed(world: World, readers: int, folder: Path, *, track: bool) -> None:
    """The demo catalog, ``readers`` active subscribers, this week's issue built and submitted a day ago."""
    from sqlalchemy import insert, update
    from sqlmodel import select

    from newsletter import wiring
    from newsletter.catalog import store
    from newsletter.catalog.json_format import parse_json
    from newsletter.clicks.links import targets_of
    from newsletter.config import Settings
    from newsletter.db import session_scope
    from newsletter.demo import demo_catalog
    from newsletter.models import DeliveryRow, IssueRow
    from newsletter.publishing import build_issue
    from newsletter.values import Week
    from subscribers.models import Subscriber

    settings = Settings(_env_file=None, **values(world, folder, track=track))
    with wiring.build(settings, check_schema=False) as wired:
        engine, today, now = wired.engine, date.today(), datetime.now(UTC)
        with session_scope(engine) as session:
            store.apply_batches(session, [parse_json(json.dumps(demo_catalog(today)), source="demo")])
        with engine.begin() as connection:
            connection.execute(insert(Subscriber.__table__), [  # type: ignore[attr-defined]
                {"email": f"reader{i:07d}@example.org", "status": "active", "categories": "", "free_only": False,
                 "source": "bench", "created_at": now} for i in range(readers)])
        outcome = build_issue(engine, week=Week.containing(today), renderer=wired.renderer)
        assert outcome.number is not None
        with session_scope(engine) as session:
            session.execute(update(DeliveryRow).values(status="submitted", submitted_at=now - timedelta(days=1)))
            issue_id = session.exec(select(IssueRow.id).where(IssueRow.number == outcome.number)).one()
            assert issue_id is not None
            world.links = sorted(targets_of(session, issue_id))
            ids = list(session.exec(select(DeliveryRow.subscriber_id)))
        world.number = outcome.number
        if track:
            world.tokens = [wired.signer.mint_voter(i, outcome.number) for i in ids]


def count_clicks(database_url: str) -> int:
    from sqlalchemy import func, select

    from newsletter.db import make_engine
    from newsletter.models import ClickRow

    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(ClickRow)).scalar_one())
    finally:
        engine.dispose()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(world: World, folder: Path, *, track: bool) -> subprocess.Popen[bytes]:
    """``newsletter serve`` on the world's port, once /healthz answers (30 s at most)."""
    log = (folder / "server.log").open("wb")
    port = world.base.rsplit(":", 1)[1]
    env = {f"NEWSLETTER_{name.upper()}": str(value) for name, value in values(world, folder, track=track).items()}
    server = subprocess.Popen([sys.executable, "-m", "newsletter", "serve", "--port", port], cwd=folder,
                              env={**os.environ, **env}, stdout=log, stderr=log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(world.base + "/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.1)
        if server.poll() is not None:
            break
    stop_server(server)
    raise SystemExit(f"the server did not start:\n{(folder / 'server.log').read_text()[-3000:]}")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    """Stop the server the ordinary way (SIGINT: uvicorn shuts the app down, which writes buffered clicks)."""
    if server.poll() is None:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


if __name__ == "__main__":
    main()
