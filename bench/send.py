"""Send benchmark: an issue to N active subscribers through a local server speaking the providers' wire format.

    python bench/send.py                       # 10,000 and 100,000 subscribers on SQLite
    python bench/send.py --database-url postgresql://postgres@127.0.0.1:5432/test

Every case runs in its own process, so its peak RSS is its own. Modes:

* ``postmark``: full body per message, 500 messages a request;
* ``sendgrid``: body once per request, 1000 personalizations a request;
* ``ses-raw`` / ``ses-bulk`` (ask for them with ``--modes``): SES v2, full MIME per SendEmail, or body once per
  SendBulkEmail of 50 destinations;
* ``sendgrid-novotes`` / ``postmark-novotes``: the same issue built without its reader vote links (and so with no
  per-recipient voter token), to show what the vote links cost beside ``sendgrid`` / ``postmark`` in the same run;
* ``sendgrid-local`` / ``postmark-local``: the same, with ``NEWSLETTER_DELIVERY_MODE=local`` and the readers
  spread over 24 zones: the send starts, then runs 26 hours later, when every wave is due (so each claim walks
  24 waves of the claim index instead of one);
* ``baseline``: the naive way, measured in the same run: MJML rendered per recipient and one HTTP request
  (Postmark wire format) per message, each result committed on its own.

Each case is seeded in one process and sent from a fresh one, so the peak RSS is the sending process's own (as
a ``newsletter worker``'s would be); the seeding process's peak is printed beside it.

After each SendGrid or Postmark case, the machine's ceiling for it (``bench/ceiling.py``): the last request the
case sent, posted again by a minimal client to a server that reads and discards it, and to the wire server
(whose difference is the fake service's own parsing). The fake service's CPU time during the case is read from
``/proc`` too.

Prints recipients per second, bytes sent per recipient, claim time per delivery and peak RSS for each case,
then the ceilings, the ratios and the targets. The ``--workers`` cases (``newsletter worker`` processes sharing
the database, batches of 1000) also print, on PostgreSQL, the rows written per delivery: ``n_tup_ins +
n_tup_upd`` of the delivery and delivery batch tables in ``pg_stat_user_tables``, read before and after the
hand-off and the send.

    python bench/send.py --database-url postgresql://postgres@127.0.0.1:5432/test --modes sendgrid \
        --sizes 1000 --workers 4 --worker-size 100000 1000000
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Issue 15: body-once ≥ 20,000/s; full-body ≥ 50 % of the ceiling and ≥ 30× the baseline; peak RSS ≤ 100 MB, flat.
TARGETS = {"sendgrid": 20_000}
CEILING_SHARE, BASELINE_RATIO, RSS_LIMIT = {"postmark": 0.5}, {"postmark": 30}, 100.0
PATHS = {"sendgrid": "/v3/mail/send", "postmark": "/email/batch"}  # what each case's ceiling replays
# Four workers before claims took batches (each delivery written at claim and again with its result), issue 15.
BEFORE_BATCHES = {("workers-4", 100_000): 7_216, ("workers-4", 1_000_000): 3_560}
# One zone per offset from UTC-11 to UTC+13, the half- and quarter-hour ones included.
ZONES = ("Pacific/Pago_Pago", "Pacific/Honolulu", "America/Anchorage", "America/Los_Angeles", "America/Denver",
         "America/Chicago", "America/New_York", "America/Halifax", "America/Sao_Paulo", "Atlantic/Azores",
         "Europe/London", "Europe/Berlin", "Europe/Athens", "Europe/Moscow", "Asia/Dubai", "Asia/Karachi",
         "Asia/Kolkata", "Asia/Kathmandu", "Asia/Dhaka", "Asia/Bangkok", "Asia/Shanghai", "Asia/Tokyo",
         "Australia/Sydney", "Pacific/Auckland")
CLAIMS = [0.0]  # seconds spent claiming in this case's process
SCHEDULING = [0.0]  # seconds spent giving every delivery its due time (local cases), counted apart from the send
SECRET = "Xb5oMwV2c8RkQz-t1NyLJf7uHq3GdPaE4sWn9KiYv0T"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--baseline", type=int, default=400, help="recipients for the naive baseline")
    parser.add_argument("--modes", nargs="+", default=["sendgrid", "postmark"])
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL (default: a SQLite file)")
    parser.add_argument("--concurrency", type=int, default=2, help="batches in flight (default: 2, the cores here)")
    parser.add_argument("--workers", type=int, nargs="*", default=[],
                        help="also send body-once through this many `newsletter worker` processes (e.g. 1 4)")
    parser.add_argument("--worker-size", type=int, nargs="+", default=[100_000],
                        help="subscribers for the --workers cases (one case per size)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--phase", choices=["seed", "send"], help=argparse.SUPPRESS)
    parser.add_argument("--number", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--ceiling-seconds", type=float, default=3.0, help="seconds of each ceiling replay")
    args = parser.parse_args()
    if args.worker:
        if args.mode.startswith("workers-"):
            result = run_workers_case(int(args.mode.split("-")[1]), args.size, args.url, args.database_url)
        elif args.phase == "seed":
            result = seed_case(args.mode, args.size, args.database_url)
        else:
            result = run_case(args.mode, args.size, args.url, args.database_url, args.concurrency, args.number)
        print(json.dumps(result))
        return
    orchestrate(args)


def orchestrate(args: argparse.Namespace) -> None:
    """Start the wire server and the discard server, run each case in fresh processes, measure each case's
    ceiling, print the table and the ratios."""
    server = subprocess.Popen([sys.executable, "-m", "tests.wire_server"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    discard = subprocess.Popen([sys.executable, str(ROOT / "bench" / "ceiling.py")], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None and discard.stdout is not None
        url, sink = server.stdout.readline().strip(), discard.stdout.readline().strip()
        engine = "PostgreSQL" if args.database_url else "SQLite"
        print(f"send benchmark on {engine}, {os.cpu_count()} cores, concurrency {args.concurrency}, server {url}, "
              f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average {os.getloadavg()[0]:.1f} at the start")
        cases = [("baseline", args.baseline)] + [(m, n) for m in args.modes for n in args.sizes]
        cases += [(f"workers-{count}", size) for count in args.workers for size in args.worker_size]
        results = []
        for mode, size in cases:
            result = worker(mode, size, url, args, server.pid)
            if mode.split("-")[0] in PATHS:
                result.update(ceiling(mode, url, sink, result, args))
            results.append(result)
    finally:
        for process in (server, discard):
            process.terminate()
            process.wait(timeout=10)
    report(results, args)


def worker(mode: str, size: int, url: str, args: argparse.Namespace, server_pid: int = 0) -> dict[str, Any]:
    """One case: a workers case in one process; any other seeded in one process and sent from a fresh one."""
    if mode.startswith("workers-"):
        result = _run(mode, size, url, args)
    else:
        where, cleanup = location(args.database_url)
        try:
            seeded = _run(mode, size, url, args, "--phase", "seed", "--database-url", where)
            service = _cpu_seconds(server_pid)
            result = _run(mode, size, url, args, "--phase", "send", "--database-url", where,
                          "--number", str(seeded["number"]))
            result["service_cpu"] = (_cpu_seconds(server_pid) - service) / result["send_s"]
            result.update(setup_s=seeded["setup_s"], seed_rss_mb=seeded["rss_mb"])
        finally:
            cleanup()
    claims = f"claim {result['claim_us']:6.1f} µs/delivery  " if "claim_us" in result else ""
    if result.get("schedule_s"):
        claims += f"due times {result['schedule_s']:.1f} s  "
    extra = ""
    if "cpu_us" in result:
        extra = (f"; CPU {result['cpu_us']:.0f} µs/delivery ours, fake service busy "
                 f"{result['service_cpu']:.0%} of the send; seeding peaked at {result['seed_rss_mb']:.0f} MB")
    print(f"  {mode:9} {size:>8,} recipients: {result['rate']:>9,.0f}/s  "
          f"{result['bytes_per_recipient']:>8,.0f} B/recipient  {claims}peak RSS {result['rss_mb']:6.1f} MB  "
          f"(setup {result['setup_s']:.1f} s, send {result['send_s']:.1f} s{extra})", flush=True)
    return result


def _run(mode: str, size: int, url: str, args: argparse.Namespace, *extra: str) -> dict[str, Any]:
    command = [sys.executable, __file__, "--worker", "--mode", mode, "--size", str(size), "--url", url,
               "--concurrency", str(args.concurrency), *extra]
    if args.database_url and "--database-url" not in extra:
        command += ["--database-url", args.database_url]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"{mode} {size} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (0 when it cannot be read)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ceiling(mode: str, url: str, sink: str, result: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The case's last request replayed by a minimal client: to the discard server (the ceiling) and to the wire
    server (the ceiling with the fake service's parsing); recipients per second for both."""
    import httpx

    from bench.ceiling import replay
    from tests.wire_server import KEY

    path = PATHS[mode.split("-")[0]]
    sample = httpx.get(f"{url}/sample{path}", timeout=60).content
    headers = {"X-Postmark-Server-Token": KEY, "Authorization": f"Bearer {KEY}"}
    before = stats(url)
    requests, seconds = replay(url, path, sample, headers, seconds=args.ceiling_seconds, concurrency=args.concurrency)
    per_request = (stats(url)["recipients"] - before["recipients"]) / max(1, requests)
    via_service = requests * per_request / seconds
    requests, seconds = replay(sink, path, sample, headers, seconds=args.ceiling_seconds, concurrency=args.concurrency)
    limit = requests * per_request / seconds
    print(f"  {'':9} {'':>8}  ceiling: {limit:>9,.0f}/s  (the same {len(sample) / 1e6:.1f} MB requests of "
          f"{per_request:,.0f} recipients to a discard server; {via_service:,.0f}/s through the wire server): "
          f"this case ran at {result['rate'] / limit:.0%} of the ceiling", flush=True)
    return {"ceiling": limit, "ceiling_via_service": via_service, "request_bytes": len(sample)}


def run_workers_case(count: int, size: int, url: str, database_url: str | None) -> dict[str, Any]:
    """Body-once through ``count`` separate `newsletter worker` processes sharing the database."""
    from newsletter.worker import hand_to_workers

    wired, cleanup = database(database_url)
    try:
        started = time.perf_counter()
        number = seed(wired, size)
        built = rows_written(wired.engine)
        # Batches as the workers claim them (1000), where the hand-off makes batches; older code takes no size.
        sized = {"size": 1000} if "size" in inspect.signature(hand_to_workers).parameters else {}
        hand_to_workers(wired.engine, number, recipients=wired.recipients, **sized)
        handed = rows_written(wired.engine)
        setup = time.perf_counter() - started
        url_of_db = wired.settings.database_url
        env = os.environ | {"NEWSLETTER_DATABASE_URL": url_of_db, "NEWSLETTER_PROVIDER": "sendgrid",
                            "NEWSLETTER_PROVIDER_BASE_URL": url, "NEWSLETTER_PROVIDER_API_KEY": "test-api-key",
                            "NEWSLETTER_SECRET_KEY": SECRET,
                            "NEWSLETTER_POSTAL_ADDRESS": "1 Bench Street", "NEWSLETTER_BATCH_SIZE": "1000",
                            "NEWSLETTER_CONCURRENCY": "2", "NEWSLETTER_WORKER_POLL_SECONDS": "0.1"}
        before = stats(url)
        begin = time.perf_counter()
        workers = [subprocess.Popen([sys.executable, "-m", "newsletter", "worker"], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(count)]
        while stats(url)["recipients"] - before["recipients"] < size:
            time.sleep(0.1)
        elapsed = time.perf_counter() - begin
        peaks = [_peak_rss_mb(w.pid) for w in workers]
        for process in workers:
            process.terminate()
        for process in workers:
            process.wait(timeout=60)
        after = stats(url)
        sent = rows_written(wired.engine)
    finally:
        cleanup()
    return {"mode": f"workers-{count}", "size": size, "sent": size, "rate": size / elapsed, "send_s": elapsed,
            "setup_s": setup, "bytes_per_recipient": (after["bytes"] - before["bytes"]) / size,
            "rss_mb": max(peaks), "rss_per_worker": peaks,
            "writes_handoff": {t: (handed[t] - built.get(t, 0)) / size for t in handed},
            "writes_send": {t: (sent[t] - handed.get(t, 0)) / size for t in sent}}


def rows_written(engine: Any) -> dict[str, int]:
    """Rows inserted plus rows updated so far in the delivery and delivery batch tables of the bench's schema
    (``pg_stat_user_tables``); empty on SQLite. The backends' statistics must reach it first: an idle backend
    flushes them up to 10 s late, one that exits at once, so the pool's connections are closed (the workers have
    exited already) and the read waits a moment for them."""
    from sqlalchemy import text

    if engine.dialect.name != "postgresql":
        return {}
    engine.dispose()
    time.sleep(1)
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_stat_clear_snapshot()"))
        rows = connection.execute(text(
            "SELECT relname, n_tup_ins + n_tup_upd FROM pg_stat_user_tables WHERE schemaname = current_schema() "
            "AND relname IN ('delivery', 'delivery_batch')")).all()
    return {name: int(count) for name, count in rows}


def _writes(per_table: dict[str, float]) -> str:
    total = sum(per_table.values())
    return f"{total:.3f} (" + ", ".join(f"{table} {count:.3f}" for table, count in sorted(per_table.items())) + ")"


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    baseline = results[0]["rate"]
    print(f"\nbaseline (MJML per recipient, one request per message): {baseline:,.0f} recipients/s")
    for result in (r for r in results if r["mode"].startswith("workers-")):
        print(f"{result['mode']}: {result['rate']:,.0f} recipients/s over {result['size']:,} subscribers in "
              f"{result['send_s']:.1f} s; peak RSS per worker process "
              f"{', '.join(f'{mb:.0f}' for mb in result['rss_per_worker'])} MB")
        if result.get("writes_send"):
            print(f"  rows written per delivery: send {_writes(result['writes_send'])}; "
                  f"hand-off (due times, batches) {_writes(result['writes_handoff'])}")
        before = BEFORE_BATCHES.get((result["mode"], result["size"]))
        if before:
            target = (f" (target ≥ 7,000/s at 1,000,000: {'met' if result['rate'] >= 7000 else 'MISSED'})"
                      if result["size"] >= 1_000_000 else "")  # the target speaks of a million readers only
            print(f"  before batches (same machine, earlier run, 4 workers): {before:,}/s: now "
                  f"{result['rate'] / before:.2f}× that{target}")
    for local in (r for r in results if r["mode"].endswith("-local")):
        today = next((r for r in results if r["mode"] == local["mode"][:-6] and r["size"] == local["size"]), None)
        if today:
            ratio = local["claim_us"] / max(today["claim_us"], 1e-9)
            print(f"{local['mode']} over 24 zones, all due, {local['size']:,} readers: claiming "
                  f"{local['claim_us']:.1f} µs/delivery vs {today['claim_us']:.1f} today = {ratio:.2f}× "
                  f"(target ≤ 1.0× within noise: {'met' if ratio <= 1.15 else 'MISSED'})")
    for mode in args.modes:
        rows = [r for r in results if r["mode"] == mode]
        print(_targets(mode, rows, baseline, results[0]["rss_mb"]))


def _targets(mode: str, rows: list[dict[str, Any]], baseline: float, baseline_rss: float) -> str:
    """One line per mode: its slowest rate against the baseline and the ceiling, and its memory, with verdicts."""
    slowest = min(rows, key=lambda r: r["rate"])
    best = slowest["rate"]
    rss = [r["rss_mb"] for r in rows] + [baseline_rss]
    verdicts = []
    if mode in TARGETS:
        verdicts.append(f"≥ {TARGETS[mode]:,}/s: {'met' if best >= TARGETS[mode] else 'MISSED'}")
    if mode in BASELINE_RATIO:
        met = best >= BASELINE_RATIO[mode] * baseline
        verdicts.append(f"≥ {BASELINE_RATIO[mode]}× baseline: {'met' if met else 'MISSED'}")
    line = f"{mode}: slowest {best:,.0f}/s = {best / baseline:,.0f}× baseline"
    if "ceiling" in slowest:
        share = best / slowest["ceiling"]
        line += f" = {share:.0%} of its ceiling ({slowest['ceiling']:,.0f}/s)"
        if mode in CEILING_SHARE:
            verdicts.append(f"≥ {CEILING_SHARE[mode]:.0%} of the ceiling: "
                            f"{'met' if share >= CEILING_SHARE[mode] else 'MISSED'}")
    sizes = [r["rss_mb"] for r in rows]  # flat: the same case from its smallest size to its largest
    flat = max(sizes) - min(sizes) < 0.15 * min(sizes)
    verdicts.append(f"peak RSS ≤ {RSS_LIMIT:.0f} MB and flat: {'met' if max(rss) <= RSS_LIMIT and flat else 'MISSED'}")
    return (f"{line}; peak RSS {min(rss):.0f}–{max(rss):.0f} MB (baseline included)\n  targets: "
            + "; ".join(verdicts))


def seed_case(mode: str, size: int, database_url: str) -> dict[str, Any]:
    """Seed a case's database (made by ``location``): schema, catalog, subscribers, this week's issue."""
    from newsletter import migrate, wiring

    started = time.perf_counter()
    wired = wiring.build(bench_settings(database_url), check_schema=False)
    try:
        migrate.upgrade(wired.engine)
        number = seed(wired, size, zones=mode.endswith("-local"), votes=not mode.endswith("-novotes"))
    finally:
        wired.close()
    return {"number": number, "setup_s": time.perf_counter() - started,
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_case(mode: str, size: int, url: str, database_url: str, concurrency: int, number: int) -> dict[str, Any]:
    """One case's send in this fresh process, on a database ``seed_case`` filled: time it, count its CPU."""
    from newsletter import wiring

    wired = wiring.build(bench_settings(database_url), check_schema=False)
    try:
        timed_claims()
        before = stats(url)
        cpu, begin = time.process_time(), time.perf_counter()
        sent = naive(wired, number, url, size) if mode == "baseline" else batched(wired, number, url, mode, concurrency)
        elapsed = time.perf_counter() - begin - SCHEDULING[0]
        cpu = time.process_time() - cpu
        after = stats(url)
    finally:
        wired.close()
    moved = after["bytes"] - before["bytes"]
    return {"mode": mode, "size": size, "sent": sent, "rate": sent / elapsed, "send_s": elapsed,
            "bytes_per_recipient": moved / max(1, after["recipients"] - before["recipients"]),
            "claim_us": CLAIMS[0] / max(1, sent) * 1e6, "schedule_s": SCHEDULING[0], "cpu_us": cpu / sent * 1e6,
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def location(url: str | None) -> tuple[str, Any]:
    """A fresh database for one case (a SQLite file in a new folder, or a new PostgreSQL schema): its URL, and how
    to remove it. The seeding and the sending processes both open it."""
    if url is None:
        folder = tempfile.mkdtemp(prefix="bench-")
        return f"sqlite:///{folder}/bench.db", lambda: shutil.rmtree(folder, ignore_errors=True)
    from sqlalchemy import text

    from newsletter.db import make_engine

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = make_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    admin.dispose()

    def drop() -> None:
        engine = make_engine(url)
        with engine.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{schema}", drop


def bench_settings(database_url: str) -> Any:
    """The settings every case runs with: the bench's database, secret, sender and postal address."""
    from newsletter.config import Settings

    return Settings(_env_file=None, database_url=database_url, secret_key=SECRET, postal_address="1 Bench Street",
                    from_address="Weekly AI Tool Verdicts <verdicts@news.example.com>",
                    public_url="https://app.example.com", site_url="https://site.example.com/compare/")


def database(url: str | None) -> tuple[Any, Any]:
    """The case's Wiring on a fresh database (a SQLite file, or a new PostgreSQL schema), and how to remove it."""
    from sqlalchemy import text

    from newsletter import migrate, wiring
    from newsletter.db import make_engine

    if url is None:
        folder = tempfile.TemporaryDirectory()
        wired = wiring.build(bench_settings(f"sqlite:///{folder.name}/bench.db"), check_schema=False)
        migrate.upgrade(wired.engine)
        return wired, lambda: (wired.close(), folder.cleanup())
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = make_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in url else "?"
    wired = wiring.build(bench_settings(f"{url}{separator}options=-csearch_path%3D{schema}"), check_schema=False)
    migrate.upgrade(wired.engine)

    def drop() -> None:
        wired.close()
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
    return wired, drop


def timed_claims() -> None:
    """Count the time spent in ``deliveries.claim`` (the send loop calls it through the package) in ``CLAIMS``."""
    from newsletter import deliveries

    claim = deliveries.claim

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return claim(*args, **kwargs)
        finally:
            CLAIMS[0] += time.perf_counter() - start
    deliveries.claim = timed  # type: ignore[assignment]


def seed(wired: Any, size: int, *, zones: bool = False, votes: bool = True) -> int:
    """The demo catalog, ``size`` active subscribers in three cohorts (with ``zones``, spread over 24 time zones),
    and this week's issue built (without ``votes``, with no vote links: what they cost is the difference)."""
    from sqlalchemy import insert

    from newsletter.catalog import store
    from newsletter.catalog.json_format import parse_json
    from newsletter.db import session_scope
    from newsletter.demo import demo_catalog
    from newsletter.publishing import build_issue
    from newsletter.values import Week
    from subscribers.models import Subscriber

    engine, today = wired.engine, date.today()
    with session_scope(engine) as session:
        store.apply_batches(session, [parse_json(json.dumps(demo_catalog(today)), source="demo")])
    now = datetime.now(UTC)
    prefs = ["", "Developer Tools", "Design,Developer Tools"]
    # Core inserts in one connection's transaction: the ORM would build 100,000 objects first.
    with engine.begin() as connection:
        for start in range(0, size, 5_000):  # in chunks, so that seeding doesn't set the peak RSS
            rows = [{"email": f"reader{i:07d}@example.org", "status": "active", "categories": prefs[i % 3],
                     "free_only": False, "source": "bench", "created_at": now,
                     "time_zone": ZONES[i % len(ZONES)] if zones else None}
                    for i in range(start, min(size, start + 5_000))]
            connection.execute(insert(Subscriber.__table__), rows)  # type: ignore[attr-defined]
    renderer = wired.renderer if votes else replace(wired.renderer, context=replace(wired.context, vote_url=""))
    outcome = build_issue(engine, week=Week.containing(today), renderer=renderer)
    assert outcome.number is not None
    return int(outcome.number)


def batched(wired: Any, number: int, url: str, mode: str, concurrency: int) -> int:
    """The real send path."""
    from newsletter.dispatch import SendOptions, send_issue
    from newsletter.providers.postmark import PostmarkProvider
    from newsletter.providers.sendgrid import SendGridProvider
    from tests.wire_server import KEY

    provider = ses(mode, url) if mode.startswith("ses-") else \
        (PostmarkProvider if mode.startswith("postmark") else SendGridProvider)(api_key=KEY, base_url=url, timeout=120)
    # Body-once requests carry ~1 KB per recipient, so they take 1000; full bodies (~35 KB each) go 500 at a time,
    # Postmark's most: the request is written message by message (``JsonArray``), so its 17 MB are never held at
    # once, and each batch's fixed costs (claim, reader lookup, record) are shared by five times as many messages.
    options = SendOptions(batch_size=1000 if mode.startswith("sendgrid") else 500, concurrency=concurrency)
    clock = None
    if mode.endswith("-local"):
        from newsletter.clock import ManualClock
        from newsletter.worker import hand_to_workers
        from newsletter.zones import LocalTime

        options = replace(options, local=LocalTime(datetime.min.time().replace(hour=7), "UTC"))
        start = datetime.now(UTC)
        began = time.perf_counter()
        hand_to_workers(wired.engine, number, recipients=wired.recipients, local=options.local,
                        clock=ManualClock(start))  # every reader gets a due time in one of 24 waves
        SCHEDULING[0] = time.perf_counter() - began
        clock = ManualClock(start + timedelta(hours=26))  # then the send runs when every wave is due
    sending = replace(wired.sending, options=options)
    report = send_issue(wired.engine, number, provider=provider, sending=sending, **({"clock": clock} if clock else {}))
    assert report.status == "sent", report
    return report.submitted


def ses(mode: str, url: str) -> Any:
    """SES v2 through the wire server: ``ses-raw`` one SendEmail of full MIME per message, ``ses-bulk`` one
    SendBulkEmail per 50 destinations of a stored template."""
    from newsletter.providers.ses import SesProvider
    from newsletter.providers.ses_bulk import SesBulkProvider
    from tests import ses_wire

    kind = SesBulkProvider if mode == "ses-bulk" else SesProvider
    return kind(region=ses_wire.REGION, api_key=ses_wire.KEY_ID, secret_access_key=ses_wire.SECRET,
                domain="news.example.com", base_url=url, timeout=120)


def naive(wired: Any, number: int, url: str, size: int) -> int:
    """The naive way: render the MJML for every recipient, one request and one commit per message."""
    from newsletter import deliveries, issues
    from newsletter.catalog import store
    from newsletter.db import session_scope
    from newsletter.digest import build_digest, narrow
    from newsletter.dispatch import personalise
    from newsletter.providers.postmark import PostmarkProvider
    from newsletter.render import PreparedEmail, render_cohort
    from newsletter.values import Week
    from tests.wire_server import KEY

    engine, recipients = wired.engine, wired.recipients
    week = Week.containing(date.today())
    with session_scope(engine) as session:
        issue = issues.get_issue(session, number)
        issue_id = issue.id
        deliveries.schedule(session, issue_id, start=datetime.now(UTC))  # all due now, as a send's start makes them
        digest = build_digest(store.comparisons_for_week(session, week), week=week, site_url="https://site/")
    assert digest is not None
    cohorts = {cohort.key: cohort for cohort, _ in recipients.cohorts()}
    provider = PostmarkProvider(api_key=KEY, base_url=url, timeout=120)
    sent = 0
    with provider:
        while sent < size and (claim := deliveries.claim(engine, issue_id, 1, timedelta(minutes=5))):
            (delivery, subscriber, cohort_key), = claim.rows
            recipient = recipients.by_ids([subscriber])[subscriber]
            narrowed = narrow(digest, cohorts[cohort_key])
            assert narrowed is not None
            rendered = render_cohort(narrowed, cohorts[cohort_key], env=wired.emails, context=wired.context)
            message = personalise(PreparedEmail.of(rendered), recipient, delivery_id=delivery, issue_number=number,
                                  envelope=wired.envelope)
            deliveries.record(engine, claim, provider.send_messages([message]))
            sent += 1
    return sent


def stats(url: str) -> dict[str, int]:
    import httpx

    answer: dict[str, int] = httpx.get(f"{url}/stats", timeout=10).json()
    return answer


if __name__ == "__main__":
    main()
