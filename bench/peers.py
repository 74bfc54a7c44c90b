"""Our send beside what a Python team would use instead: Django's mail API with django-anymail.

    pip install -e '.[bench]'
    python bench/peers.py                      # 10,000 and 100,000 readers on SQLite

For each service and size, one database is seeded (``bench/send.py``'s seeding: the demo catalog, this week's
issue in three cohorts) and both senders run on it, one after the other, each in a fresh process, against the
same local wire server (counting mode):

* **ours**: ``send_issue`` as ``bench/send.py`` runs it (SendGrid 1,000 a request, body once; Postmark 500 full
  bodies a request), with delivery rows, leases, signed links and crash safety;
* **the peer**, written as anymail's documentation shows: for SendGrid one ``EmailMultiAlternatives`` per 1,000
  readers with ``merge_data`` (anymail's batch send: the body once, a personalization per reader) and
  ``merge_headers``, handed to ``send_messages``; for Postmark, where anymail refuses ``merge_data`` without a
  stored template, one message per reader, filled by ``str.replace`` and sent to Postmark's ``/email``, 100
  messages per ``send_messages`` call. Each reader's unsubscribe and preferences links and voter token are
  signed with Django's ``signing.Signer`` (a newsletter must carry working one-click unsubscribe links). It
  reads the issue's stored bodies and its readers (by delivery list, in keyset pages of 1,000) with the plain
  DB-API driver, and keeps no state.

Prints readers per second and peak RSS for both, and the ratios.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SERVICES = ("sendgrid", "postmark")
SECRET = "Xb5oMwV2c8RkQz-t1NyLJf7uHq3GdPaE4sWn9KiYv0T"
SENDER = "Weekly AI Tool Verdicts <verdicts@news.example.com>"
PUBLIC = "https://app.example.com"
SLOTS = ("unsubscribe_url", "preferences_url", "web_url", "voter")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--services", nargs="+", default=list(SERVICES), choices=SERVICES)
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL (default: a SQLite file)")
    parser.add_argument("--concurrency", type=int, default=2, help="our batches in flight (the peer sends in turn)")
    parser.add_argument("--peer", choices=SERVICES, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--number", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer:
        print(json.dumps(run_peer(args.peer, args.url, args.database_url, args.number)))
        return
    orchestrate(args)


def orchestrate(args: argparse.Namespace) -> None:
    """Start the wire server; per service and size seed once, run ours then the peer; print the table."""
    from bench.send import _run, location, stats

    server = subprocess.Popen([sys.executable, "-m", "tests.wire_server"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    rows = []
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        print(f"peers on {'PostgreSQL' if args.database_url else 'SQLite'}, wire server {url}", flush=True)
        for service in args.services:
            for size in args.sizes:
                where, cleanup = location(args.database_url)
                try:
                    number = _run(service, size, url, args, "--phase", "seed", "--database-url", where)["number"]
                    ours = _run(service, size, url, args, "--phase", "send", "--database-url", where,
                                "--number", str(number))
                    before = stats(url)["recipients"]
                    peer = _peer(service, url, where, number)
                    if stats(url)["recipients"] - before != size:
                        raise SystemExit(f"the peer's {service} send reached {stats(url)['recipients'] - before:,} "
                                         f"of {size:,} readers")
                finally:
                    cleanup()
                rows.append((service, size, ours, peer))
                print(f"  {service:8} {size:>8,} readers: ours {ours['rate']:>8,.0f}/s {ours['rss_mb']:5.0f} MB; "
                      f"django-anymail {peer['rate']:>8,.0f}/s {peer['rss_mb']:5.0f} MB", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=10)
    table(rows)


def _peer(service: str, url: str, database_url: str, number: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--peer", service, "--url", url, "--database-url", database_url,
               "--number", str(number)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"peer {service} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def table(rows: list[tuple[str, int, dict[str, Any], dict[str, Any]]]) -> None:
    """The README's table: readers/s and peak RSS, ours against the peer."""
    print("\n| service | readers | ours: readers/s | django-anymail: readers/s | ours ÷ peer | ours: peak RSS "
          "| django-anymail: peak RSS |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for service, size, ours, peer in rows:
        print(f"| {service} | {size:,} | {ours['rate']:,.0f} | {peer['rate']:,.0f} | "
              f"{ours['rate'] / peer['rate']:.2f}× | {ours['rss_mb']:.0f} MB | {peer['rss_mb']:.0f} MB |")


def run_peer(service: str, url: str, database_url: str, number: int) -> dict[str, Any]:
    """The peer's send of issue ``number`` to its readers, timed from the first read to the last answer."""
    import django
    from django.conf import settings

    backend = {"sendgrid": "anymail.backends.sendgrid.EmailBackend",
               "postmark": "anymail.backends.postmark.EmailBackend"}[service]
    from tests.wire_server import KEY

    settings.configure(
        SECRET_KEY=SECRET, EMAIL_BACKEND=backend, DEFAULT_FROM_EMAIL=SENDER,
        ANYMAIL={"SENDGRID_API_KEY": KEY, "SENDGRID_API_URL": f"{url}/v3/",
                 # Our templates' slots are %%{name}%%: anymail adds the delimiters to merge_data's keys.
                 "SENDGRID_MERGE_FIELD_FORMAT": "%%{{{}}}%%",
                 "POSTMARK_SERVER_TOKEN": KEY, "POSTMARK_API_URL": f"{url}/",
                 "POSTMARK_MESSAGE_STREAM": "broadcast", "REQUESTS_TIMEOUT": 120})
    django.setup()
    started = time.perf_counter()
    with _connect(database_url) as db:
        bodies = _bodies(db, number)
        sent = (_sendgrid if service == "sendgrid" else _postmark)(db, number, bodies)
    elapsed = time.perf_counter() - started
    return {"service": service, "sent": sent, "rate": sent / elapsed, "send_s": elapsed,
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


class _connect:
    """A plain DB-API connection to the case's database (sqlite3, or psycopg for PostgreSQL), as a context."""

    def __init__(self, url: str) -> None:
        if url.startswith("sqlite:///"):
            import sqlite3

            self.connection: Any = sqlite3.connect(url.removeprefix("sqlite:///"))
            self.mark = "?"
        else:
            import psycopg

            self.connection = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
            self.mark = "%s"

    def __enter__(self) -> _connect:
        return self

    def __exit__(self, *_: object) -> None:
        self.connection.close()

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """All rows of ``sql`` (written with ``?`` placeholders)."""
        cursor = self.connection.cursor()
        cursor.execute(sql.replace("?", self.mark), params)
        return list(cursor.fetchall())


def _bodies(db: _connect, number: int) -> dict[str, tuple[str, str, str]]:
    """The issue's stored emails by cohort: (subject, HTML, text), slots in place."""
    found = db.rows("SELECT c.cohort_key, c.subject, c.html, c.text FROM issue_cohort c JOIN issue i "
                    "ON i.id = c.issue_id WHERE i.number = ?", number)
    return {key: (subject, html, text) for key, subject, html, text in found}


def _readers(db: _connect, number: int) -> Any:
    """The issue's readers in pages of 1,000: (subscriber id, address, cohort key), by keyset on the delivery."""
    after = 0
    while page := db.rows("SELECT d.id, s.id, s.email, d.cohort_key FROM delivery d JOIN subscriber s "
                          "ON s.id = d.subscriber_id JOIN issue i ON i.id = d.issue_id "
                          "WHERE i.number = ? AND d.id > ? ORDER BY d.id LIMIT 1000", number, after):
        after = page[-1][0]
        yield [(subscriber, email, cohort) for _, subscriber, email, cohort in page]


def _values(subscriber: int, number: int) -> dict[str, str]:
    """One reader's slot values, each link signed under its own salt."""
    from django.core.signing import Signer

    return {"unsubscribe_url": f"{PUBLIC}/unsubscribe/{Signer(salt='unsubscribe').sign(str(subscriber))}",
            "preferences_url": f"{PUBLIC}/preferences/{Signer(salt='manage').sign(str(subscriber))}",
            "web_url": f"{PUBLIC}/archive/{number}",
            "voter": Signer(salt="voter").sign(f"{subscriber}.{number}")}


def _headers(values: dict[str, str]) -> dict[str, str]:
    return {"List-Unsubscribe": f"<{values['unsubscribe_url']}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


def _sendgrid(db: _connect, number: int, bodies: dict[str, tuple[str, str, str]]) -> int:
    """anymail's batch send: one message per cohort per page of 1,000 readers, ``merge_data`` per reader."""
    from django.core.mail import EmailMultiAlternatives, get_connection

    sent = 0
    with get_connection() as connection:
        for page in _readers(db, number):
            messages = []
            for cohort in {c for _, _, c in page}:
                subject, html, text = bodies[cohort]
                readers = [(s, e) for s, e, c in page if c == cohort]
                message = EmailMultiAlternatives(subject, text, to=[e for _, e in readers])
                message.attach_alternative(html, "text/html")
                values = {e: _values(s, number) for s, e in readers}
                message.merge_data = values  # type: ignore[attr-defined]
                message.merge_headers = {e: _headers(v) for e, v in values.items()}  # type: ignore[attr-defined]
                messages.append(message)
            if connection.send_messages(messages) != len(messages):
                raise SystemExit("anymail sent fewer messages than it was given")
            sent += len(page)
    return sent


def _postmark(db: _connect, number: int, bodies: dict[str, tuple[str, str, str]]) -> int:
    """One message per reader to Postmark's ``/email`` (no ``merge_data`` without a stored template), filled by
    ``str.replace``, 100 messages per ``send_messages`` call."""
    from django.core.mail import EmailMultiAlternatives, get_connection

    sent = 0
    with get_connection() as connection:
        for page in _readers(db, number):
            for start in range(0, len(page), 100):
                messages = []
                for subscriber, email, cohort in page[start:start + 100]:
                    subject, html, text = bodies[cohort]
                    values = _values(subscriber, number)
                    for name in SLOTS:
                        html = html.replace(f"%%{{{name}}}%%", values[name])
                        text = text.replace(f"%%{{{name}}}%%", values[name])
                    message = EmailMultiAlternatives(subject, text, to=[email], headers=_headers(values))
                    message.attach_alternative(html, "text/html")
                    messages.append(message)
                sent += connection.send_messages(messages)
    return sent


if __name__ == "__main__":
    main()
