"""The web benchmark still runs end to end against `newsletter serve` (tiny sizes; the figures are the README's),
and its redirect case finds every click in the database (both databases)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_web_benchmark_runs_and_loses_no_click(engine: str) -> None:
    url = os.environ.get("NEWSLETTER_TEST_DATABASE_URL")
    if engine == "postgresql" and not url:
        pytest.skip("PostgreSQL tests need NEWSLETTER_TEST_DATABASE_URL")
    database = ["--database-url", url] if engine == "postgresql" and url else []
    done = subprocess.run([sys.executable, "bench/web.py", "--requests", "60", "--concurrency", "6", "--readers", "20",
                           "--track", "--time-limit", "60", *database], cwd=ROOT, capture_output=True, text=True,
                          timeout=240, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    for case in ("healthz", "redirect"):
        assert re.search(rf"{case} +60 requests from 6 clients: +[\d,]+ req/s +p50 +[\d.]+ ms +p99 +[\d.]+ ms "
                         r"+errors 0", done.stdout), done.stdout
    assert "clicks written: 60 of 60 redirects" in done.stdout
    assert "After the server stopped: 60 clicks for 60 redirects: none lost, none doubled" in done.stdout
    assert "× the baseline's requests per second" in done.stdout


READER_CASES = ("unsubscribe", "signup", "preferences", "archive", "webhook", "ballot", "vote")


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_reader_and_webhook_cases_find_exactly_what_was_sent(engine: str) -> None:
    url = os.environ.get("NEWSLETTER_TEST_DATABASE_URL")
    if engine == "postgresql" and not url:
        pytest.skip("PostgreSQL tests need NEWSLETTER_TEST_DATABASE_URL")
    database = ["--database-url", url] if engine == "postgresql" and url else []
    workers = ["--workers", "2"] if engine == "postgresql" else []
    done = subprocess.run([sys.executable, "bench/web.py", "--cases", "healthz", *READER_CASES, "--requests", "8",
                           "--concurrency", "4", "--readers", "30", "--time-limit", "60", *workers, *database],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    for case in READER_CASES:
        assert re.search(rf"{case} +8 requests from \d clients: .* errors 0", done.stdout), done.stdout
    assert re.search(r"webhook +8 requests from 4 clients: .*\(\S+ events/s, 100 a request\)", done.stdout)
    for check in ("readers unsubscribed by one-click: 8 of 8 (exact)", "pending sign-ups stored: 8 of 8 (exact)",
                  "webhook events stored: 800 of 800 (exact)", "votes stored: 8 of 8 (exact)",
                  "unsubscribe: ", "× the baseline's requests per second", "load average",
                  "Target ≥ 1,000 one-click unsubscribes/s, p99 < 100 ms, no error: ",
                  "Target ≥ 500 webhook events/s, p99 < 100 ms, no error: "):
        assert check in done.stdout, done.stdout
    assert f"{2 if workers else 1} worker(s)" in done.stdout


def test_slow_provider_case_reports_every_route_and_the_sign_ups_waiting_on_it() -> None:
    done = subprocess.run([sys.executable, "bench/web.py", "--cases", "healthz", "unsubscribe", "--requests", "20",
                           "--concurrency", "4", "--readers", "30", "--slow-provider", "0.5", "--time-limit", "60"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"slow-signup +\d+ requests from 1 clients: .* errors 0 +\(\d+ confirmations reached the 0.5 s "
                     r"provider\)", done.stdout), done.stdout
    assert re.search(r"With a 0.5 s provider, the highest p99 is \S+'s: [\d.]+ ms", done.stdout), done.stdout
    assert re.search(r"Target with a 0.5 s provider, every route's p99 < 100 ms: (met|MISSED \(.+ ms\))$",
                     done.stdout, re.MULTILINE), done.stdout


def test_too_few_readers_for_unsubscribes_and_votes_is_refused_before_seeding() -> None:
    done = subprocess.run([sys.executable, "bench/web.py", "--cases", "unsubscribe", "vote", "--requests", "20",
                           "--readers", "30"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert "--readers 30 is fewer than the unsubscribe and vote cases' 40 requests" in done.stderr
