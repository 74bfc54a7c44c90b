"""The peer benchmark runs end to end at a tiny size (the figures themselves are the README's).

It needs the ``bench`` extra (django, django-anymail); without it the test is skipped, since the suite's own
install leaves it out.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not (importlib.util.find_spec("django") and importlib.util.find_spec("anymail")),
                    reason="the bench extra (django, django-anymail) is not installed")
def test_peer_benchmark_runs_and_prints_its_table() -> None:
    done = subprocess.run([sys.executable, "bench/peers.py", "--sizes", "300"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    for service in ("sendgrid", "postmark"):
        assert re.search(rf"\| {service} \| 300 \| [\d,]+ \| [\d,]+ \| [\d.]+× \| \d+ MB \| \d+ MB \|", done.stdout), done.stdout
