"""Shared helpers for the subscriber web tests: an app with a memory outbox, CSRF-aware form posts."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx2
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from newsletter.config import Settings
from newsletter.providers.memory import MemoryProvider
from newsletter.web.app import create_app
from newsletter.web.desk.auth import Gate
from newsletter.web.site import Site
from tests.conftest import TEST_SECRET_KEY

SECRET = TEST_SECRET_KEY


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def uvicorn_serving(app: FastAPI, port: int, *, join: float = 10.0, **config: Any) -> Iterator[None]:
    """``app`` under a real uvicorn on 127.0.0.1:``port`` in a thread, started before the block, stopped after it
    (waiting up to ``join`` seconds, so background work such as mail still being sent can finish). ``config`` goes
    to ``uvicorn.Config`` (by default only warnings are logged)."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, **({"log_level": "warning"} | config)))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=join)


@contextmanager
def running(make_settings: Callable[..., Settings], database_url: str, *, gate: Callable[[Site], Gate] | None = None,
            **overrides: Any) -> Iterator[tuple[TestClient, MemoryProvider]]:
    outbox = MemoryProvider()
    settings = make_settings(database_url=database_url, secret_key=SECRET, **overrides)
    with TestClient(create_app(settings, provider=outbox, gate=gate), base_url="https://testserver") as client:
        yield client, outbox


def csrf(client: TestClient, url: str) -> str:
    """Load a page (which sets the CSRF cookie) and read its form's token."""
    page = client.get(url)
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert match, page.text
    return match[1]


def link_in(outbox: MemoryProvider, address: str) -> str:
    """The confirmation link path in the last email to ``address``."""
    message = [m for m in outbox.outbox if m.to == address and "/confirm/" in m.text][-1]
    match = re.search(r"https://app\.example\.com(/confirm/\S+)", message.text)
    assert match, message.text
    return match[1]


def confirm(client: TestClient, link: str, **request: Any) -> httpx2.Response:
    """Open a confirmation link (a page with a button, which changes nothing) and press its button."""
    page = client.get(link, **request)
    match = re.search(r'<form method="post" action="([^"]+)">\s*<input type="hidden" name="csrf" value="([0-9a-f]+)"',
                      page.text)
    assert page.status_code == 200 and match and match[1] == link, page.text
    return client.post(match[1], data={"csrf": match[2]}, **request)
