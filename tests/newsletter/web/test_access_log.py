"""``newsletter serve`` keeps subscriber tokens out of uvicorn's access log (a real server on 127.0.0.1)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from newsletter import migrate
from newsletter.config import Settings
from newsletter.db import make_engine
from newsletter.web.access_log import redact
from subscribers.tokens import Signer


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_the_access_log_of_serve_holds_no_token(tmp_path: Path, make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(database_url=f"sqlite:///{tmp_path / 'serve.db'}")
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    engine.dispose()
    signer, port = Signer(settings.require_secret()), free_port()
    tokens = {"manage": signer.mint("manage", 7), "unsubscribe": signer.mint("unsubscribe", 7),
              "confirm": signer.mint_confirm(7, "ann@example.com")}
    env = os.environ | {"NEWSLETTER_DATABASE_URL": settings.database_url,
                        "NEWSLETTER_SECRET_KEY": settings.require_secret(), "NEWSLETTER_POSTAL_ADDRESS": "1 Test Street",
                        "NEWSLETTER_PUBLIC_URL": "https://app.example.com", "NEWSLETTER_OUTBOX_DIR": str(tmp_path)}
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "newsletter", "serve", "--port", str(port)], env=env,
                                  cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while "Uvicorn running" not in log.read_text() and time.monotonic() < deadline:
            assert server.poll() is None, log.read_text()
            time.sleep(0.1)
        with httpx.Client(base_url=base, timeout=10) as client:
            client.get(f"/confirm/{tokens['confirm']}")
            client.get(f"/preferences/{tokens['manage']}?from=email")
            client.get(f"/unsubscribe/{tokens['unsubscribe']}")
            client.post(f"/unsubscribe/{tokens['unsubscribe']}", data={"List-Unsubscribe": "One-Click"})
            client.post(f"/resubscribe/{tokens['unsubscribe']}")
            client.get(f"/archive?t={tokens['manage']}")
            client.get("/archive/1")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    written = log.read_text()
    for token in tokens.values():
        assert token not in written, written
    for line in ("method=GET path=/confirm/[token] http=1.1 status=400",
                 'method=GET path="/preferences/[token]?from=email" http=1.1',
                 "method=GET path=/unsubscribe/[token] http=1.1", "method=POST path=/unsubscribe/[token] http=1.1",
                 "method=POST path=/resubscribe/[token] http=1.1", 'method=GET path="/archive?t=[token]" http=1.1 status=200',
                 "method=GET path=/archive/1 http=1.1 status=404"):
        assert line in written, written  # one logfmt line per request (newsletter.logs)


def test_only_token_shaped_segments_are_redacted() -> None:
    assert redact("/editor/issues/1?cohort=all&done=edited") == "/editor/issues/1?cohort=all&done=edited"
    assert redact("/archive.atom") == "/archive.atom"
    assert redact("/vote/MQ.zO5urdWriZCTTyCfuu-SBVNZxC0/ship") == "/vote/[token]/ship"  # a tokened route to come
