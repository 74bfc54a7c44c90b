"""``newsletter serve --workers 2``: several uvicorn processes on one database answer the same links."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from sqlalchemy.engine import Engine

from subscribers.tokens import Signer
from tests.newsletter.test_issues import seed
from tests.newsletter.web.helpers import SECRET
from tests.newsletter.web.test_app import status, token_for


def test_two_uvicorn_workers_serve_and_unsubscribe(engine: Engine, database_url: str, tmp_path: Path) -> None:
    seed(engine)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = os.environ | {"NEWSLETTER_DATABASE_URL": database_url, "NEWSLETTER_SECRET_KEY": SECRET, "NEWSLETTER_POSTAL_ADDRESS": "1 Test Street",
                        "NEWSLETTER_OUTBOX_DIR": str(tmp_path / "out")}
    with (tmp_path / "serve.log").open("wb") as log:
        server = subprocess.Popen([sys.executable, "-m", "newsletter", "serve", "--workers", "2", "--port", str(port)],
                                  env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{base}/unsubscribe/x", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        addresses = [f"all{i}@example.com" for i in range(5)]
        tokens = [token_for(engine, address) for address in addresses]

        def one_click(token: str) -> int:
            return httpx.post(f"{base}/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"}, timeout=10).status_code

        with ThreadPoolExecutor(5) as pool:
            assert list(pool.map(one_click, [t for _, t in tokens])) == [200] * 5
        assert [status(engine, subscriber) for subscriber, _ in tokens] == ["unsubscribed"] * 5
        assert httpx.get(f"{base}/preferences/{Signer(SECRET).mint('manage', tokens[0][0])}").status_code == 200
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    assert "Started parent process" in (tmp_path / "serve.log").read_text()
