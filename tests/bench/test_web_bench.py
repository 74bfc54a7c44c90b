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
