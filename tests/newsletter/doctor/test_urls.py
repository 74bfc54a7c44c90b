"""Our own URLs, against the real app under uvicorn on 127.0.0.1 (both databases): https unless local, answering,
and a one-click POST with the dry-run token answered 200 without redirect, unsubscribing no one."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from pydantic import AnyHttpUrl
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from newsletter.config import Settings
from newsletter.doctor import Context, Finding
from newsletter.doctor.urls import check_urls, is_local
from newsletter.providers.memory import MemoryProvider
from newsletter.web.app import create_app
from subscribers.models import Subscriber
from tests.newsletter.test_issues import seed
from tests.newsletter.web.helpers import free_port, uvicorn_serving

Build = Callable[..., Context]


@pytest.fixture
def app_url(engine: Engine, database_url: str, make_settings: Callable[..., Settings]) -> Iterator[str]:
    """The subscriber app under a real uvicorn; its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app = create_app(make_settings(database_url=database_url, public_url=url), provider=MemoryProvider())
    with uvicorn_serving(app, port):
        yield url


def by_name(found: list[Finding]) -> dict[str, Finding]:
    return {f.name: f for f in found}


def test_the_running_app_passes_and_nobody_is_unsubscribed(engine: Engine, database_url: str, app_url: str,
                                                           context: Build) -> None:
    seed(engine)
    with Session(engine) as session:
        before = {s.email: s.status for s in session.exec(select(Subscriber))}
    found = by_name(check_urls(context(database_url=database_url, public_url=app_url)))
    assert [f.status for f in found.values()] == ["pass", "pass", "pass", "skip"], found
    assert "NEWSLETTER_METRICS_TOKEN is not set" in found["Metrics"].detail
    assert "answered 200 without redirect" in found["One-click unsubscribe"].detail
    with Session(engine) as session:
        assert {s.email: s.status for s in session.exec(select(Subscriber))} == before


def test_plain_http_on_a_public_name_fails(context: Build) -> None:
    everywhere = httpx.MockTransport(lambda request: httpx.Response(200))  # nothing leaves the machine
    checked = context(transport=everywhere)
    # Settings refuse such a URL when loaded; the doctor still says so for settings made without that check.
    checked.wiring.settings = checked.settings.model_copy(update={"public_url": AnyHttpUrl("http://news.example.com")})
    found = by_name(check_urls(checked))
    assert found["Public URL is https"].status == "fail" and "https" in found["Public URL is https"].fix
    assert found["One-click unsubscribe"].status == "pass"


def test_local_addresses_may_use_http() -> None:
    assert all(is_local(h) for h in ("localhost", "127.0.0.1", "::1", "[::1]", "127.0.0.2"))
    assert not any(is_local(h) for h in ("example.com", "10.0.0.1", "news.localhost.example"))


def test_an_unreachable_url_fails_and_skips_the_one_click_try(context: Build) -> None:
    found = by_name(check_urls(context(public_url=f"http://127.0.0.1:{free_port()}")))
    assert found["Public URL answers"].status == "fail" and "newsletter serve" in found["Public URL answers"].fix
    assert found["One-click unsubscribe"].status == "skip"


class _Redirecting(BaseHTTPRequestHandler):
    """A front end that answers pages but sends every POST elsewhere (a misconfigured proxy)."""

    def log_message(self, *_: Any) -> None:
        return

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(308)
        self.send_header("Location", "https://www.example.com" + self.path)
        self.send_header("Content-Length", "0")
        self.end_headers()


def test_a_redirecting_one_click_endpoint_fails(context: Build) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Redirecting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        found = by_name(check_urls(context(public_url=f"http://127.0.0.1:{server.server_address[1]}")))
    finally:
        server.shutdown()
        server.server_close()
    one_click = found["One-click unsubscribe"]
    assert one_click.status == "fail" and "redirects (HTTP 308 to https://www.example.com/unsubscribe/" in one_click.detail


def test_an_app_with_another_secret_refuses_the_dry_run(database_url: str, app_url: str, context: Build) -> None:
    other = "Zx9vQm2Lr7Tb4Wc8Yd1Fh6Jk3Np0Sg5Uo-AeBiCuDw"
    found = by_name(check_urls(context(database_url=database_url, public_url=app_url, secret_key=other)))
    assert found["One-click unsubscribe"].status == "fail" and "NEWSLETTER_SECRET_KEY" in found["One-click unsubscribe"].fix


def test_without_the_secret_key_the_dry_run_is_not_tried_but_the_rest_is(app_url: str, context: Build) -> None:
    found = by_name(check_urls(context(public_url=app_url, secret_key=None)))
    assert found["Public URL answers"].status == "pass"
    assert found["One-click unsubscribe"].status == "fail" and "NEWSLETTER_SECRET_KEY" in found["One-click unsubscribe"].detail


def test_metrics_answer_their_token_and_another_token_warns(engine: Engine, database_url: str,
                                                           make_settings: Callable[..., Settings],
                                                           context: Build) -> None:
    token = "scrape-token-0123456789abcdef"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app = create_app(make_settings(database_url=database_url, public_url=url, metrics_token=token),
                     provider=MemoryProvider())
    with uvicorn_serving(app, port):
        good = by_name(check_urls(context(database_url=database_url, public_url=url, metrics_token=token)))
        other = by_name(check_urls(context(database_url=database_url, public_url=url,
                                           metrics_token="another-token-0123456789")))
    assert good["Metrics"].status == "pass" and "Prometheus text" in good["Metrics"].detail
    assert other["Metrics"].status == "warn" and "refused the token" in other["Metrics"].detail
    assert all(token not in f.detail + f.fix for f in [*good.values(), *other.values()])
