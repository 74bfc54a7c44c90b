"""The send benchmark's ``--workers`` path on PostgreSQL, at a tiny size: it runs, and each delivery row is written
once during the send (the figures themselves are the README's)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PG_URL

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not PG_URL, reason="PostgreSQL tests need NEWSLETTER_TEST_DATABASE_URL")
def test_workers_write_each_delivery_row_once_during_the_send() -> None:
    assert PG_URL is not None
    done = subprocess.run([sys.executable, "bench/send.py", "--database-url", PG_URL, "--sizes", "100",
                           "--baseline", "5", "--modes", "sendgrid", "--workers", "2", "--worker-size", "3000"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    assert re.search(r"workers-2: [\d,]+ recipients/s over 3,000 subscribers", done.stdout), done.stdout
    found = re.search(r"rows written per delivery: send ([\d.]+) \(delivery ([\d.]+), delivery_batch ([\d.]+)\)",
                      done.stdout)
    assert found, done.stdout
    total, rows, batches = map(float, found.groups())
    assert rows == pytest.approx(1.0, abs=0.01)  # each delivery row once: its result, never its claim
    assert batches < 0.01 and total < 1.01  # a few writes of each 1,000-delivery batch row
