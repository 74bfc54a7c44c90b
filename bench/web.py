"""Web load benchmark: N requests from C concurrent clients against `newsletter serve` on 127.0.0.1.

    python bench/web.py                                   # healthz (baseline) and redirect on SQLite
    python bench/web.py --all --workers 2 --database-url postgresql://postgres@127.0.0.1:5432/test
    python bench/web.py --all --slow-provider 2           # confirmations to a provider answering 2 s late
    python bench/web.py --cases redirect --requests 5000 --concurrency 100 --track

The server is started as a subprocess (`python -m newsletter serve --workers W`) on a seeded database: the demo
catalog, ``--readers`` active subscribers and this week's issue built and marked submitted a day ago (so no click
is taken for a scanner's). Each case is a name in ``CASES``: how its requests are made, what answer is right, and
what the database must hold afterwards; the reader and webhook cases are in ``web_cases``.

* ``healthz``: ``GET /healthz``, which touches nothing: the server's own ceiling (and this client's), measured in
  the same run as the baseline the other cases are compared to.
* ``redirect``: ``GET /r/{issue}/{link}`` over the issue's links (with ``--track``, each with a reader's token),
  as a browser; afterwards the click table must hold exactly one click per redirect (no event lost, none
  doubled), checked once the writer has caught up and again after the server stopped.
* ``unsubscribe``, ``signup``, ``preferences``, ``archive``, ``webhook`` (SendGrid batches of 100 events),
  ``ballot`` and ``vote``: see ``web_cases``.

With ``--slow-provider S`` the app sends its mail to a local Postmark that answers S seconds late, and a sign-up
comes in every S seconds while the cases run (``web_slow``), so that a confirmation is always waiting on the
provider while every route is measured.

Bounded: every case stops after its requests or ``--time-limit`` seconds, whichever comes first. Prints requests
per second, p50 and p99 latency and errors per case, each case's throughput and p99 as a ratio of the baseline's,
and the load average; exits 1 when a request failed or the database does not hold exactly what was sent.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import web_cases  # noqa: E402  (after the path: run as a script from anywhere)
from bench.web_cases import Case, World, get  # noqa: E402
from bench.web_client import Client, ClientError, Jar  # noqa: E402
from bench.web_slow import Trickle, slow_provider  # noqa: E402
from bench.web_world import count_clicks, database, seed, values  # noqa: E402

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


def redirect_path(world: World, i: int) -> str:
    """Every link of the issue in turn; with tokens, each request as another reader."""
    path = f"/r/{world.number}/{world.links[i % len(world.links)]}"
    return f"{path}?r={world.tokens[i % len(world.tokens)]}" if world.tokens else path


def clicks_written(world: World, expected: int, sent: int) -> str:
    """Wait (up to 10 s) for the writer to catch up; what the click table holds against what was answered."""
    start = time.monotonic()
    while (held := count_clicks(world.database_url)) < expected and time.monotonic() - start < 10:
        time.sleep(0.05)
    return f"clicks written: {held} of {expected} redirects, {1000 * (time.monotonic() - start):.0f} ms after the load"


CASES: dict[str, Case] = {
    "healthz": Case(get(lambda world, i: "/healthz"), 200, 2_000),
    "redirect": Case(get(redirect_path), 302, 2_000, clicks_written),
    **web_cases.CASES,
}
DEFAULT = ["healthz", "redirect"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", default=DEFAULT, choices=sorted(CASES))
    parser.add_argument("--all", action="store_true", help="every case, the baseline first")
    parser.add_argument("--requests", type=int, default=None, help="per case (default: each case's own)")
    parser.add_argument("--concurrency", type=int, default=50, help="concurrent clients (default 50)")
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds per case at most")
    parser.add_argument("--readers", type=int, default=None,
                        help="active subscribers seeded (default 3,000, or as many as the unsubscribe and vote "
                             "cases' requests together)")
    parser.add_argument("--workers", type=int, default=1, help="`newsletter serve --workers` (default 1)")
    parser.add_argument("--slow-provider", type=float, default=0.0, metavar="SECONDS",
                        help="confirmations go to a local Postmark that answers this late, while a sign-up "
                             "comes in that often during every case")
    parser.add_argument("--track", action="store_true", help="NEWSLETTER_TRACK_READERS=true, tokens in links")
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL (default: a SQLite file)")
    args = parser.parse_args()
    if args.all:
        args.cases = list(CASES)
    args.readers = readers_for(args)
    with tempfile.TemporaryDirectory() as folder:
        database_url, drop = database(args.database_url, Path(folder))
        try:
            run(args, database_url, Path(folder))
        finally:
            drop()


def readers_for(args: argparse.Namespace) -> int:
    """The readers to seed: unsubscribes take readers from the end of the list and votes from the start, and a
    reader who has left may not vote, so together they need one reader each."""
    needed = sum(args.requests or CASES[name].requests for name in ("unsubscribe", "vote") if name in args.cases)
    if args.readers is None:
        return max(3_000, needed)
    if args.readers < needed:
        raise SystemExit(f"--readers {args.readers:,} is fewer than the unsubscribe and vote cases' {needed:,} "
                         "requests: a reader who unsubscribed may not vote. Seed more readers or send fewer.")
    return int(args.readers)


def run(args: argparse.Namespace, database_url: str, folder: Path) -> None:
    """Seed, serve, load each case, stop the server, check the database, print the figures."""
    world = World(f"http://127.0.0.1:{free_port()}", database_url)
    with slow_provider(args.slow_provider) as provider:
        settings = values(world, folder, track=args.track) | provider.settings
        seed(world, args.readers, settings)
        args.load = os.getloadavg()
        print(f"{args.workers} worker(s), {'PostgreSQL' if args.database_url else 'SQLite'}, {args.readers:,} "
              f"readers; load average {' '.join(f'{x:.2f}' for x in args.load)}", flush=True)
        server = start_server(world, folder, settings, args.workers)
        trickle = Trickle(world, args.slow_provider) if args.slow_provider else None
        results: list[tuple[str, dict[str, float]]] = []
        checks: dict[str, str] = {}
        try:
            for name in args.cases:
                case = CASES[name]
                clients = min(args.concurrency, case.clients or args.concurrency)
                figures = asyncio.run(load(world, case, args.requests or case.requests, clients, args.time_limit))
                results.append((name, figures))
                print(line(name, figures), flush=True)
                if case.verify is not None:
                    checks[name] = case.verify(world, int(figures["answered"]), int(figures["requests"]))
                    print("  " + checks[name], flush=True)
        finally:
            if trickle is not None:
                results.append(("slow-signup", trickle.stop()))
                print(line("slow-signup", results[-1][1]) + f"  ({provider.received()} confirmations reached the "
                      f"{args.slow_provider:g} s provider)", flush=True)
            stop_server(server)
    if any(figures["errors"] for _, figures in results):
        print("The server's log ends:\n" + (folder / "server.log").read_text(errors="replace")[-2000:])
    finish(args, results, checks, database_url)


def finish(args: argparse.Namespace, results: list[tuple[str, dict[str, float]]], checks: dict[str, str],
           database_url: str) -> None:
    """The ratios, the load average, the checks after the server stopped; exit 1 on any mismatch or error."""
    ratios(results)
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}. Figures from a shared machine: compare "
          "ratios within one run, not runs with each other.")
    if args.slow_provider:
        worst = max(results, key=lambda found: found[1]["p99"])
        print(f"With a {args.slow_provider:g} s provider, the highest p99 is {worst[0]}'s: {worst[1]['p99']:.1f} ms")
    for line_ in targets(results, args.slow_provider):
        print(line_)
    if "redirect" in args.cases:
        expected, held = int(dict(results)["redirect"]["answered"]), count_clicks(database_url)
        checks["stopped"] = (f"After the server stopped: {held} clicks for {expected} redirects: "
                             f"{'none lost, none doubled' if held == expected else 'MISMATCH'}")
        print(checks["stopped"])
    print(table(args, results, checks))
    if any("MISMATCH" in check for check in checks.values()) or any(figures["errors"] for _, figures in results):
        raise SystemExit(1)


async def load(world: World, case: Case, requests: int, concurrency: int, limit: float) -> dict[str, float]:
    """``requests`` requests from ``concurrency`` clients, each answered before its client sends the next."""
    latencies: list[float] = []
    errors: list[str] = []  # what each failed request got instead: a status, or the client's exception
    issued = [0]
    # Raw streams, one kept-alive connection per client, one cookie jar for all (``web_client``): httpx's clients
    # cost the machine several times the server's own CPU per request, so they measured themselves.
    jar = Jar()

    def connect() -> Client:
        return Client(world.base, jar=jar, headers={"User-Agent": BROWSER})

    if case.setup is not None:
        first = connect()
        await case.setup(first, world)
        await first.close()
    deadline = time.monotonic() + limit

    async def one_client() -> None:
        client = connect()
        while issued[0] < requests and time.monotonic() < deadline:
            i = issued[0]
            issued[0] += 1
            start = time.perf_counter()
            try:
                answer = await case.send(client, world, i)
                wrong = "" if answer.status_code == case.status else str(answer.status_code)
            except ClientError as exc:
                wrong = str(exc).split(":", 1)[0]
            latencies.append(time.perf_counter() - start)
            if wrong:
                errors.append(wrong)
        await client.close()
    started = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    if errors:
        print("  errors: " + ", ".join(f"{n}× {what}" for what, n in Counter(errors).items()))
    return summary(latencies, len(errors), elapsed, concurrency) | {"events": case.events}


def summary(latencies: list[float], errors: int, elapsed: float, concurrency: int) -> dict[str, float]:
    """Requests per second, p50 and p99 in milliseconds, errors."""
    ordered = sorted(latencies) or [0.0]
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"requests": len(latencies), "answered": len(latencies) - errors, "errors": errors,
            "seconds": elapsed, "rps": len(latencies) / elapsed if elapsed else 0.0, "concurrency": concurrency,
            "p50": 1000 * statistics.median(ordered), "p99": 1000 * p99}


def line(name: str, f: dict[str, float]) -> str:
    """One case's figures; a case whose requests carry several events (webhook batches) adds events per second."""
    events = f.get("events", 1)
    return (f"{name:<11} {int(f['requests']):>6,} requests from {int(f['concurrency'])} clients: "
            f"{f['rps']:>8,.0f} req/s  p50 {f['p50']:>7.1f} ms  p99 {f['p99']:>7.1f} ms  errors {int(f['errors'])}"
            + (f"  ({f['rps'] * events:,.0f} events/s, {int(events)} a request)" if events > 1 else ""))


def table(args: argparse.Namespace, results: list[tuple[str, dict[str, float]]], checks: dict[str, str]) -> str:
    """The run as the README's Markdown table: each case, its ratios to the baseline and what the database held."""
    base = dict(results).get("healthz")
    slow = (f", mail to a Postmark answering {args.slow_provider:g} s late (`--slow-provider {args.slow_provider:g}`)"
            if args.slow_provider else "")
    rows = [f"\n{'PostgreSQL' if args.database_url else 'SQLite'}, {args.workers} worker(s){slow}, load average "
            f"{args.load[0]:.2f} at the start:\n",
            "| case | requests / clients | req/s | p50 | p99 | errors | × baseline (req/s, p99) | in the database |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, f in results:
        events = f" ({f['rps'] * f['events']:,.0f} events/s)" if f.get("events", 1) > 1 else ""
        ratio = (f"{f['rps'] / base['rps']:.2f}×, {f['p99'] / max(base['p99'], 1e-9):.2f}×"
                 if base and base["rps"] else "")
        rows.append(f"| {name} | {int(f['requests']):,} / {int(f['concurrency'])} | {f['rps']:,.0f}{events} | "
                    f"{f['p50']:,.0f} ms | {f['p99']:,.0f} ms | {int(f['errors'])} | {ratio} | "
                    f"{checks.get(name, '')} |")
    return "\n".join(rows)


# Issue 15's targets on this machine: one-click unsubscribes and webhook events, each with p99 < 100 ms, no error;
# and with a slow provider, no route's p99 above 100 ms.
UNSUBSCRIBES, EVENTS, P99 = 1_000, 500, 100.0


def targets(results: list[tuple[str, dict[str, float]]], slow: float) -> list[str]:
    """Each target this run measured, with its figure and whether it was met."""
    found, lines = dict(results), []

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    if "unsubscribe" in found:
        f = found["unsubscribe"]
        ok = f["rps"] >= UNSUBSCRIBES and f["p99"] < P99 and not f["errors"]
        lines.append(f"Target ≥ {UNSUBSCRIBES:,} one-click unsubscribes/s, p99 < {P99:.0f} ms, no error: "
                     f"{f['rps']:,.0f}/s, p99 {f['p99']:,.0f} ms, {int(f['errors'])} errors: {verdict(ok)}")
    if "webhook" in found:
        f = found["webhook"]
        rate = f["rps"] * f.get("events", 1)
        ok = rate >= EVENTS and f["p99"] < P99 and not f["errors"]
        lines.append(f"Target ≥ {EVENTS:,} webhook events/s, p99 < {P99:.0f} ms, no error: {rate:,.0f} events/s, "
                     f"p99 {f['p99']:,.0f} ms, {int(f['errors'])} errors: {verdict(ok)}")
    if slow:
        over = [f"{name} {f['p99']:,.0f} ms" for name, f in results if f["p99"] >= P99]
        lines.append(f"Target with a {slow:g} s provider, every route's p99 < {P99:.0f} ms: "
                     + (f"{verdict(False)} ({', '.join(over)})" if over else verdict(True)))
    return lines


def ratios(results: list[tuple[str, dict[str, float]]]) -> None:
    found = dict(results)
    if "healthz" not in found:
        return
    for name, figures in results:
        if name != "healthz" and found["healthz"]["rps"]:
            print(f"{name}: {figures['rps'] / found['healthz']['rps']:.2f}× the baseline's requests per second, "
                  f"p99 {figures['p99'] / max(found['healthz']['p99'], 1e-9):.2f}× the baseline's")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(world: World, folder: Path, settings: dict[str, Any], workers: int) -> subprocess.Popen[bytes]:
    """``newsletter serve`` with ``workers`` processes on the world's port, once /healthz answers (30 s at most)."""
    log = (folder / "server.log").open("wb")
    port = world.base.rsplit(":", 1)[1]
    env = {f"NEWSLETTER_{name.upper()}": str(value) for name, value in settings.items()}
    server = subprocess.Popen([sys.executable, "-m", "newsletter", "serve", "--port", port, "--workers",
                               str(workers)], cwd=folder, env={**os.environ, **env}, stdout=log, stderr=log)
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
