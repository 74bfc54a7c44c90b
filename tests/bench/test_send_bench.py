"""The send benchmark still runs end to end (at a tiny size; the figures themselves are the README's)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_benchmark_runs_and_prints_its_figures() -> None:
    done = subprocess.run([sys.executable, "bench/send.py", "--sizes", "300", "--baseline", "10",
                           "--modes", "sendgrid", "postmark", "ses-bulk", "ses-raw", "--ceiling-seconds", "0.5"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    for mode in ("baseline", "sendgrid", "postmark", "ses-bulk", "ses-raw"):
        assert re.search(rf"{mode} +[\d,]+ recipients: +[\d,]+/s +[\d,]+ B/recipient +claim +[\d.,]+ µs/delivery +peak RSS", done.stdout), done.stdout
    assert "× baseline" in done.stdout and "peak RSS" in done.stdout
    # the machine's ceiling for each SendGrid and Postmark case, and each case as a share of it
    assert len(re.findall(r"ceiling: +[\d,]+/s .* [\d,]+/s through the wire server\): this case ran at \d+% of the ceiling", done.stdout)) == 2, done.stdout
    assert re.search(r"postmark: slowest [\d,]+/s = [\d,]+× baseline = \d+% of its ceiling", done.stdout), done.stdout
    assert "fake service busy" in done.stdout and "targets:" in done.stdout
