"""Catalog sync against a real HTTP server on 127.0.0.1: conditional GETs, and failures that change nothing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from newsletter.catalog.sync import latest_warning, sync_catalog
from newsletter.models import ComparisonRow, ToolRow

EXPORT = (Path(__file__).resolve().parents[3] / "newsletter" / "demo_catalog.json").read_bytes()


@dataclass
class Site:
    """What the fake site serves, and the validators it saw."""

    body: bytes = EXPORT
    status: int = 200
    etag: str = '"v1"'
    seen: list[dict[str, str | None]] = field(default_factory=list)


@pytest.fixture
def site() -> Iterator[tuple[Site, str]]:
    state = Site()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            pass

        def do_GET(self) -> None:
            state.seen.append({"etag": self.headers.get("If-None-Match"),
                               "since": self.headers.get("If-Modified-Since")})
            if state.status == 200 and self.headers.get("If-None-Match") == state.etag:
                self.send_response(304)
                self.end_headers()
                return
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("ETag", state.etag)
            self.send_header("Last-Modified", "Mon, 16 Nov 2026 07:00:00 GMT")
            self.send_header("Content-Length", str(len(state.body)))
            self.end_headers()
            self.wfile.write(state.body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}/verdicts.json"
    server.shutdown()
    server.server_close()


def _counts(engine: Engine) -> tuple[int, int]:
    with Session(engine) as session:
        return (session.exec(select(func.count()).select_from(ToolRow)).one(),
                session.exec(select(func.count()).select_from(ComparisonRow)).one())


def test_the_export_is_imported_then_fetched_conditionally(engine: Engine, site: tuple[Site, str]) -> None:
    state, url = site
    first = sync_catalog(engine, url)
    assert first.status == "changed" and "tools: 14 new" in first.detail
    assert _counts(engine) == (14, 9)
    second = sync_catalog(engine, url)
    assert second.status == "unchanged"
    assert state.seen == [{"etag": None, "since": None},
                          {"etag": '"v1"', "since": "Mon, 16 Nov 2026 07:00:00 GMT"}]


@pytest.mark.parametrize(("status", "body", "expected"), [
    (200, b'{"tools": [', "line 1"),
    (200, b'{"tools": [], "comparisons": [{"slug": "x"}]}', "was not imported"),
    (503, b"down for maintenance", "HTTP 503"),
])
def test_a_bad_fetch_keeps_the_catalog_and_leaves_a_warning(engine: Engine, site: tuple[Site, str], status: int,
                                                            body: bytes, expected: str) -> None:
    state, url = site
    assert sync_catalog(engine, url).status == "changed"
    state.body, state.status, state.etag = body, status, '"v2"'
    outcome = sync_catalog(engine, url)
    assert outcome.status == "failed" and expected in outcome.detail
    assert _counts(engine) == (14, 9)
    with Session(engine) as session:
        warning = latest_warning(session)
    assert warning is not None and expected in warning[0]
    state.body, state.status = EXPORT, 200
    assert sync_catalog(engine, url).status == "changed"  # the validators of the failed fetch were not kept
    with Session(engine) as session:
        assert latest_warning(session) is None


def test_an_unreachable_site_is_a_warning_not_a_crash(engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    outcome = sync_catalog(engine, f"http://127.0.0.1:{port}/verdicts.json", timeout=2)
    assert outcome.status == "failed" and "could not be fetched" in outcome.detail
    assert "building from the catalog as stored" in caplog.text
