"""Confirmation mail goes out after the answer, off the event loop: a slow or failing provider shows nowhere."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from newsletter.config import Settings
from newsletter.db import session_scope
from newsletter.providers.postmark import PostmarkProvider
from newsletter.web.app import create_app
from subscribers import store
from subscribers.models import Subscriber
from subscribers.tokens import Signer
from tests.newsletter.web.helpers import csrf, free_port, uvicorn_serving
from tests.wire_server import KEY, Fault, WireServer

SLOW = 2.0  # seconds the provider takes to answer


class Arrivals(list[Any]):
    """The wire server's list of received messages, telling a waiting test when one has arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = threading.Event()

    def extend(self, items: Any) -> None:
        super().extend(items)
        self.arrived.set()


def postmark(wire: WireServer) -> PostmarkProvider:
    return PostmarkProvider(api_key=KEY, base_url=wire.url, max_retries=0, timeout=30, message_stream="outbound")


def add(engine: Engine, *addresses: str, pending: bool = False) -> list[int]:
    with session_scope(engine) as session:
        store.add_active(session, list(addresses))
    with Session(engine) as session:
        rows = [session.exec(select(Subscriber).where(Subscriber.email == a)).one() for a in addresses]
        for row in rows:
            if pending:  # asked for a confirmation long ago
                row.status, row.confirmation_sent_at = "pending", datetime.now(UTC) - timedelta(days=1)
        session.commit()
        return [r.id for r in rows if r.id is not None]


def sign_up(client: TestClient | httpx.Client, address: str) -> httpx.Response:
    token = csrf(client, "/")  # type: ignore[arg-type]
    return client.post("/subscribe", data={"csrf": token, "email": address})


def test_provider_down_every_sign_up_gets_the_same_page_and_can_ask_again(
        engine: Engine, database_url: str, make_settings: Callable[..., Settings],
        caplog: pytest.LogCaptureFixture) -> None:
    add(engine, "active@example.org")
    add(engine, "pending@example.org", pending=True)
    settings = make_settings(database_url=database_url, confirm_resend_minutes=10)
    with WireServer() as wire:
        wire.state.faults.extend([Fault(status=503)] * 10)  # the service is down
        with TestClient(create_app(settings, provider=postmark(wire)), base_url="https://testserver",
                        raise_server_exceptions=False) as client, caplog.at_level(logging.WARNING):
            answers = [sign_up(client, a) for a in ("new@example.org", "pending@example.org", "active@example.org")]
            assert [a.status_code for a in answers] == [200, 200, 200]
            assert answers[0].text == answers[1].text == answers[2].text and "Check your inbox" in answers[0].text
            assert wire.state.received == [] and "not sent" in caplog.text
            wire.state.faults.clear()  # the service is back: the pending reader asks again and gets the link at
            # once, well inside the resend window
            assert sign_up(client, "new@example.org").status_code == 200
        assert [m.to for m in wire.state.received] == ["new@example.org"]


@contextmanager
def serve(make_settings: Callable[..., Settings], provider: PostmarkProvider, **overrides: Any) -> Iterator[str]:
    """The app under a real uvicorn on a free port; stopping it lets the mail still being sent finish."""
    port = free_port()
    settings = make_settings(public_url=f"http://127.0.0.1:{port}", **overrides)  # plain http: cookies not Secure
    with uvicorn_serving(create_app(settings, provider=provider), port, join=30):
        yield f"http://127.0.0.1:{port}"


def timed(call: Callable[[], httpx.Response]) -> tuple[float, httpx.Response]:
    start = time.perf_counter()
    answer = call()
    return time.perf_counter() - start, answer


def test_a_slow_provider_slows_no_route(engine: Engine, database_url: str,
                                        make_settings: Callable[..., Settings]) -> None:
    readers = add(engine, "r0@example.org", "r1@example.org", "r2@example.org")
    signer = Signer(make_settings().require_secret())
    with WireServer() as wire:
        wire.state.latency = SLOW
        arrivals = Arrivals()
        wire.state.received = arrivals
        with serve(make_settings, postmark(wire), database_url=database_url, signup_rate_limit=100) as base:
            signups = []
            # Three new addresses (their mails take SLOW seconds each, one after another), then one already
            # pending and one active: every answer is as quick, whether mail goes out or not.
            for address in ("new0@example.org", "new1@example.org", "new2@example.org", "new0@example.org",
                            "r0@example.org"):
                with httpx.Client(base_url=base, timeout=30) as visitor:
                    signups.append(timed(lambda: sign_up(visitor, address)))  # noqa: B023
            assert len({answer.text for _, answer in signups}) == 1
            assert arrivals.arrived.wait(10)  # the first confirmation is at the provider, waiting for its answer
            with httpx.Client(base_url=base, timeout=30) as reader:
                archive = [timed(lambda: reader.get("/archive")) for _ in range(3)]
                one_click = [timed(lambda: reader.post(f"/unsubscribe/{signer.mint('unsubscribe', i)}",  # noqa: B023
                                                       data={"List-Unsubscribe": "One-Click"})) for i in readers]
            in_flight = len(arrivals)
        assert [m.to for m in arrivals] == ["new0@example.org", "new1@example.org", "new2@example.org"]
    for seconds, answer in signups + archive + one_click:
        assert answer.status_code == 200, answer.text
        assert seconds < SLOW / 2, (seconds, answer.request.url)
    assert in_flight < 3  # the measurements above ran while confirmations were still being sent
