"""Send benchmark: an issue to N active subscribers through a local server speaking the providers' wire format.

    python bench/send.py                       # 10,000 and 100,000 subscribers on SQLite
    python bench/send.py --database-url postgresql://postgres@127.0.0.1:5432/test

Every case runs in its own process, so its peak RSS is its own. Modes:

* ``postmark``: full body per message, 500 messages a request;
* ``sendgrid``: body once per request, 1000 personalizations a request;
* ``ses-raw`` / ``ses-bulk`` (ask for them with ``--modes``): SES v2, full MIME per SendEmail, or body once per
  SendBulkEmail of 50 destinations;
* ``sendgrid-local`` / ``postmark-local``: the same, with ``NEWSLETTER_DELIVERY_MODE=local`` and the readers
  spread over 24 zones: the send starts, then runs 26 hours later, when every wave is due (so each claim walks
  24 waves of the claim index instead of one);
* ``baseline``: the naive way, measured in the same run: MJML rendered per recipient and one HTTP request
  (Postmark wire format) per message, each result committed on its own.

Prints recipients per second, bytes sent per recipient, claim time per delivery and peak RSS for each case,
then the ratios. The ``--workers`` cases (``newsletter worker`` processes sharing the database, batches of 1000)
also print, on PostgreSQL, the rows written per delivery: ``n_tup_ins + n_tup_upd`` of the delivery and
delivery batch tables in ``pg_stat_user_tables``, read before and after the hand-off and the send.

    python bench/send.py --database-url postgresql://postgres@127.0.0.1:5432/test --modes sendgrid \
        --sizes 1000 --workers 4 --worker-size 100000 1000000
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import resource
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

TARGETS = {"sendgrid": 10_000, "postmark": 2_000}
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
    args = parser.parse_args()
    if args.worker:
        if args.mode.startswith("workers-"):
            result = run_workers_case(int(args.mode.split("-")[1]), args.size, args.url, args.database_url)
        else:
            result = run_case(args.mode, args.size, args.url, args.database_url, args.concurrency)
        print(json.dumps(result))
        return
    orchestrate(args)


def orchestrate(args: argparse.Namespace) -> None:
    """Start the wire server, run each case in a fresh process, print the table and the ratios."""
    server = subprocess.Popen([sys.executable, "-m", "tests.wire_server"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        engine = "PostgreSQL" if args.database_url else "SQLite"
        print(f"send benchmark on {engine}, {os.cpu_count()} cores, concurrency {args.concurrency}, server {url}")
        cases = [("baseline", args.baseline)] + [(m, n) for m in args.modes for n in args.sizes]
        cases += [(f"workers-{count}", size) for count in args.workers for size in args.worker_size]
        results = [worker(mode, size, url, args) for mode, size in cases]
    finally:
        server.terminate()
        server.wait(timeout=10)
    report(results, args)


def worker(mode: str, size: int, url: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, __file__, "--worker", "--mode", mode, "--size", str(size), "--url", url,
               "--concurrency", str(args.concurrency)]
    if args.database_url:
        command += ["--database-url", args.database_url]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"{mode} {size} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    claims = f"claim {result['claim_us']:6.1f} µs/delivery  " if "claim_us" in result else ""
    if result.get("schedule_s"):
        claims += f"due times {result['schedule_s']:.1f} s  "
    print(f"  {mode:9} {size:>8,} recipients: {result['rate']:>9,.0f}/s  "
          f"{result['bytes_per_recipient']:>8,.0f} B/recipient  {claims}peak RSS {result['rss_mb']:6.1f} MB  "
          f"(setup {result['setup_s']:.1f} s, send {result['send_s']:.1f} s)", flush=True)
    return result


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
            print(f"  before batches (same machine, earlier run, 4 workers): {before:,}/s: now "
                  f"{result['rate'] / before:.2f}× that (target ≥ 7,000/s at 1,000,000: "
                  f"{'met' if result['size'] < 1_000_000 or result['rate'] >= 7000 else 'MISSED'})")
    for local in (r for r in results if r["mode"].endswith("-local")):
        today = next((r for r in results if r["mode"] == local["mode"][:-6] and r["size"] == local["size"]), None)
        if today:
            ratio = local["claim_us"] / max(today["claim_us"], 1e-9)
            print(f"{local['mode']} over 24 zones, all due, {local['size']:,} readers: claiming "
                  f"{local['claim_us']:.1f} µs/delivery vs {today['claim_us']:.1f} today = {ratio:.2f}× "
                  f"(target ≤ 1.0× within noise: {'met' if ratio <= 1.15 else 'MISSED'})")
    for mode in args.modes:
        rows = [r for r in results if r["mode"] == mode]
        best = min(r["rate"] for r in rows)
        rss = [r["rss_mb"] for r in rows]
        target = TARGETS.get(mode, 0)
        print(f"{mode}: slowest {best:,.0f}/s = {best / baseline:,.0f}× baseline "
              f"(target ≥ {target:,}/s and ≥ 20×: {'met' if best >= target and best >= 20 * baseline else 'MISSED'}); "
              f"peak RSS {min(rss):.0f}–{max(rss):.0f} MB (target < 250 MB, flat: "
              f"{'met' if max(rss) < 250 and max(rss) - min(rss) < 0.25 * min(rss) else 'MISSED'})")


def run_case(mode: str, size: int, url: str, database_url: str | None, concurrency: int) -> dict[str, Any]:
    """One case in this process: seed, build the issue, then time the send."""
    started = time.perf_counter()
    wired, cleanup = database(database_url)
    try:
        number = seed(wired, size, zones=mode.endswith("-local"))
        setup = time.perf_counter() - started
        timed_claims()
        before = stats(url)
        begin = time.perf_counter()
        sent = naive(wired, number, url, size) if mode == "baseline" else batched(wired, number, url, mode, concurrency)
        elapsed = time.perf_counter() - begin - SCHEDULING[0]
        after = stats(url)
    finally:
        cleanup()
    moved = after["bytes"] - before["bytes"]
    return {"mode": mode, "size": size, "sent": sent, "rate": sent / elapsed, "send_s": elapsed, "setup_s": setup,
            "bytes_per_recipient": moved / max(1, after["recipients"] - before["recipients"]),
            "claim_us": CLAIMS[0] / max(1, sent) * 1e6, "schedule_s": SCHEDULING[0],
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


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


def seed(wired: Any, size: int, *, zones: bool = False) -> int:
    """The demo catalog, ``size`` active subscribers in three cohorts (with ``zones``, spread over 24 time zones),
    and this week's issue built."""
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
    outcome = build_issue(engine, week=Week.containing(today), renderer=wired.renderer)
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
    # Body-once requests carry ~1 KB per recipient, so they take 1000; full bodies (~35 KB each) go 100 at a
    # time, the default NEWSLETTER_BATCH_SIZE, to keep the bytes in flight (and the RSS) small.
    options = SendOptions(batch_size=1000 if mode.startswith("sendgrid") else 100, concurrency=concurrency)
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
