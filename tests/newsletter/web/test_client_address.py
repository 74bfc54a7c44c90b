"""Whose address a request is: X-Forwarded-For counts only from NEWSLETTER_TRUSTED_PROXIES (sign-up, consent)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from ipaddress import ip_network
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from newsletter.config import Settings
from newsletter.providers.memory import MemoryProvider
from newsletter.web.app import create_app
from newsletter.web.site import client_address
from subscribers.models import Subscriber
from tests.conftest import TEST_SECRET_KEY
from tests.newsletter.web.helpers import confirm, csrf, link_in

TRUSTED = [ip_network("10.0.0.0/8"), ip_network("fd00::/8")]


@pytest.mark.parametrize(("peer", "forwarded", "client"), [
    ("198.51.100.7", [], "198.51.100.7"),
    ("198.51.100.7", ["1.2.3.4"], "198.51.100.7"),  # an untrusted peer's header is a forgery
    ("10.0.0.2", [], "10.0.0.2"),
    ("10.0.0.2", ["203.0.113.5"], "203.0.113.5"),
    ("10.0.0.2", ["1.2.3.4, 203.0.113.5"], "203.0.113.5"),  # the visitor prepended 1.2.3.4 themselves
    ("10.0.0.2", ["1.2.3.4, 203.0.113.5, 10.0.0.9"], "203.0.113.5"),  # two trusted hops skipped
    ("10.0.0.2", ["1.2.3.4", "203.0.113.5"], "203.0.113.5"),  # several header lines read as one list
    ("10.0.0.2", ["10.1.1.1, 10.0.0.9"], "10.1.1.1"),  # every hop ours: the first one is the visitor
    ("10.0.0.2", ["not-an-ip, 10.0.0.9"], "10.0.0.9"),  # garbage: the proxy that passed it on
    ("10.0.0.2", ["203.0.113.5:4711"], "203.0.113.5"),
    ("fd00::1", ["[2001:db8::7]:443"], "2001:db8::7"),
    ("::ffff:10.0.0.2", ["203.0.113.5"], "203.0.113.5"),
    ("testclient", ["203.0.113.5"], "testclient"),
    (None, ["203.0.113.5"], "unknown"),
])
def test_forwarded_for_is_read_only_behind_a_trusted_proxy(peer: str | None, forwarded: list[str], client: str) -> None:
    assert client_address(peer, forwarded, TRUSTED) == client


def subscriber(engine: Engine, address: str) -> Subscriber:
    with Session(engine) as session:
        row = session.exec(select(Subscriber).where(Subscriber.email == address)).first()
    assert row is not None
    return row


def sign_up(client: TestClient, address: str, forwarded: str) -> int:
    return client.post("/subscribe", data={"csrf": csrf(client, "/"), "email": address},
                       headers={"X-Forwarded-For": forwarded}).status_code


def test_consent_records_the_forwarded_address_only_from_a_trusted_proxy(
        engine: Engine, database_url: str, make_settings: Callable[..., Settings]) -> None:
    outbox = MemoryProvider()
    app = create_app(make_settings(database_url=database_url, trusted_proxies="10.0.0.0/8"), provider=outbox)
    with (TestClient(app, base_url="https://testserver", client=("198.51.100.7", 5000)) as outsider,
          TestClient(app, base_url="https://testserver", client=("10.0.0.2", 5000)) as proxy):
        assert sign_up(outsider, "forger@example.org", "192.0.2.1") == 200
        assert sign_up(proxy, "behind@example.org", "192.0.2.1, 203.0.113.5") == 200
        confirm(proxy, link_in(outbox, "behind@example.org"), headers={"X-Forwarded-For": "203.0.113.6"})
    assert subscriber(engine, "forger@example.org").consent_ip == "198.51.100.7"
    behind = subscriber(engine, "behind@example.org")
    assert (behind.consent_ip, behind.confirmed_ip) == ("203.0.113.5", "203.0.113.6")


def test_a_forged_header_does_not_get_around_the_sign_up_limit(
        engine: Engine, database_url: str, make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings(database_url=database_url, trusted_proxies="10.0.0.0/8", signup_rate_limit=2),
                     provider=MemoryProvider())
    with (TestClient(app, base_url="https://testserver", client=("198.51.100.7", 5000)) as outsider,
          TestClient(app, base_url="https://testserver", client=("10.0.0.2", 5000)) as proxy):
        assert [sign_up(outsider, f"o{i}@example.org", f"192.0.2.{i}") for i in range(3)] == [200, 200, 429]
        assert [sign_up(proxy, f"p{i}@example.org", f"192.0.2.{i}") for i in range(3)] == [200, 200, 200]


def test_newsletter_serve_does_not_let_uvicorn_believe_the_header(engine: Engine, database_url: str,
                                                                  tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = os.environ | {"NEWSLETTER_DATABASE_URL": database_url, "NEWSLETTER_SECRET_KEY": TEST_SECRET_KEY,
                        "NEWSLETTER_POSTAL_ADDRESS": "1 Test Street", "NEWSLETTER_OUTBOX_DIR": str(tmp_path / "out")}
    env.pop("FORWARDED_ALLOW_IPS", None)
    with (tmp_path / "serve.log").open("wb") as log:
        server = subprocess.Popen([sys.executable, "-m", "newsletter", "serve", "--port", str(port)],
                                  env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=10) as client:
            deadline = time.monotonic() + 30
            while True:  # uvicorn trusts 127.0.0.1 by default, and this client connects from there
                try:
                    page = client.get("/")
                    break
                except httpx.ConnectError:
                    assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
                    time.sleep(0.1)
            token = page.text.split('name="csrf" value="')[1].split('"')[0]
            answer = client.post("/subscribe", data={"csrf": token, "email": "forger@example.org"},
                                 headers={"X-Forwarded-For": "192.0.2.66"})
            assert answer.status_code == 200, answer.text
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    assert subscriber(engine, "forger@example.org").consent_ip == "127.0.0.1"
