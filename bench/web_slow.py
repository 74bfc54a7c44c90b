"""The slow-provider part of ``bench/web.py``: a provider that takes seconds to answer, and sign-ups that use it.

``slow_provider(seconds)`` serves Postmark's wire format on 127.0.0.1 (``tests/wire_server.py``, the server the
provider tests use) answering every request ``seconds`` late, and gives the settings that send the app's mail
there. ``Trickle`` posts a sign-up every ``seconds`` from a thread of its own while the cases run, so that a
confirmation email is always waiting on that provider while every other route is measured; its own latencies are
reported too.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from bench.web_cases import World

CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


@dataclass
class Provider:
    """The settings that send the app's mail to the slow provider, and how many messages reached it so far."""

    settings: dict[str, Any]
    received: Callable[[], int]


@contextmanager
def slow_provider(seconds: float) -> Iterator[Provider]:
    """A local Postmark answering ``seconds`` late (with 0: no settings, the file provider stays)."""
    if not seconds:
        yield Provider({}, lambda: 0)
        return
    from tests.wire_accounts import KEY
    from tests.wire_server import WireServer

    with WireServer() as wire:
        wire.state.latency, wire.state.keep = seconds, False
        yield Provider({"provider": "postmark", "provider_api_key": KEY, "provider_base_url": wire.url,
                        "from_address": "news@news.example.com"}, lambda: wire.state.recipients)


class Trickle:
    """A sign-up every ``every`` seconds (a new address each) until ``stop``: each one's confirmation goes to the slow
    provider, and at one per provider answer the app's mail thread always has one in flight, never a growing queue
    (which would only delay the server's graceful stop)."""

    def __init__(self, world: World, every: float) -> None:
        self.world, self.every = world, every
        self.latencies: list[float] = []
        self.errors = 0
        self._done = threading.Event()
        self._started = time.perf_counter()
        self._thread = threading.Thread(target=self._run, name="slow-signups", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with httpx.Client(base_url=self.world.base, timeout=30) as client:
            found = CSRF.search(client.get("/subscribe").text)
            csrf = found.group(1) if found else ""
            n = 0
            while not self._done.wait(self.every):
                start = time.perf_counter()
                try:
                    answer = client.post("/subscribe", data={"email": f"slow-{self.world.run}-{n}@example.net",
                                                             "csrf": csrf, "website": "", "time_zone": ""})
                    self.errors += answer.status_code != 200
                except httpx.HTTPError:
                    self.errors += 1
                self.latencies.append(time.perf_counter() - start)
                n += 1

    def stop(self) -> dict[str, float]:
        """Stop posting; this trickle's figures as ``summary`` gives them."""
        from bench.web import summary

        self._done.set()
        self._thread.join(timeout=35)
        return summary(self.latencies, self.errors, time.perf_counter() - self._started, 1)
