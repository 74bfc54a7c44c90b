"""Metrics move when the work happens: a real send through the wire server, the web flows, a worker's own port,
and several uvicorn workers adding up to one set of numbers."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine

from newsletter import metrics, wiring
from newsletter.config import Settings, load_settings
from newsletter.dispatch import Envelope, Sending, SendOptions, send_issue
from newsletter.errors import (
    ConfigError,
    ProviderAmbiguous,
    ProviderAuthError,
    ProviderRequestError,
    ProviderUnavailable,
)
from newsletter.worker import hand_to_workers
from tests.conftest import TEST_SECRET_KEY
from tests.newsletter.test_issues import build, seed
from tests.newsletter.web.helpers import confirm, csrf, free_port, link_in, running
from tests.newsletter.web.test_app import token_for
from tests.wire_server import KEY, Fault, WireServer

TOKEN = "scrape-token-0123456789abcdef"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
ENVELOPE = Envelope("Verdicts <v@news.example.com>", "Weekly AI Tool Verdicts", "news.example.com",
                    "https://app.example.com")


def sample(name: str, **labels: str) -> float:
    """This process's current value of a sample (0 before it was ever counted)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scraped(page: str, name: str, **labels: str) -> float | None:
    """A sample's value in a scraped page, or None when the page does not have it."""
    for family in text_string_to_metric_families(page):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return float(found.value)
    return None


def test_a_send_moves_the_counters_and_a_scrape_shows_the_deliveries(engine: Engine, database_url: str,
                                                                    make_settings: Callable[..., Settings]) -> None:
    directory = seed(engine)
    number = build(engine, directory).number
    assert number is not None
    before = {status: sample("newsletter_messages_total", status=status) for status in ("submitted", "failed")}
    errors = {kind: sample("newsletter_provider_request_errors_total", provider="postmark", kind=kind)
              for kind in ("rate_limited", "server_error")}
    requests = sample("newsletter_provider_request_seconds_count", provider="postmark")
    batches = sample("newsletter_provider_batch_seconds_count", provider="postmark")
    with WireServer() as server:
        server.state.faults.extend([Fault(429, headers=(("Retry-After", "0"),)), Fault(500)])
        settings = make_settings(database_url=database_url, provider="postmark", provider_api_key=KEY,
                                 provider_base_url=server.url, max_retries=3)
        report = send_issue(engine, number, provider=wiring.provider_for(settings),
                            sending=Sending(directory, ENVELOPE, SendOptions(batch_size=4)))
    assert report.submitted == 10
    assert sample("newsletter_messages_total", status="submitted") - before["submitted"] == 10
    assert sample("newsletter_messages_total", status="failed") == before["failed"]
    assert sample("newsletter_provider_request_errors_total", provider="postmark", kind="rate_limited") \
        - errors["rate_limited"] == 1
    assert sample("newsletter_provider_request_errors_total", provider="postmark", kind="server_error") \
        - errors["server_error"] == 1
    assert sample("newsletter_provider_request_seconds_count", provider="postmark") - requests == 3 + 2  # 2 retried
    assert sample("newsletter_provider_batch_seconds_count", provider="postmark") - batches == 3
    with running(make_settings, database_url, metrics_token=TOKEN) as (client, _):
        page = client.get("/metrics", headers=BEARER).text
    assert scraped(page, "newsletter_deliveries", issue=str(number), status="submitted") == 10
    assert scraped(page, "newsletter_deliveries", issue=str(number), status="queued") is None  # none left
    assert scraped(page, "newsletter_issue_sending", issue=str(number)) == 0  # it is sent
    assert scraped(page, "newsletter_messages_total", status="submitted") == \
        sample("newsletter_messages_total", status="submitted")  # one web process: its own counters


def test_a_batch_failure_is_counted_by_its_kind() -> None:
    class Failing:
        name = "fake"

        def __init__(self, error: Exception) -> None:
            self.error = error

        def send_batch(self, *_: object, **__: object) -> list[object]:
            raise self.error

    for error, kind in ((ProviderUnavailable("down"), "unavailable"), (ProviderAuthError("401"), "auth"),
                        (ProviderRequestError("400"), "refused"), (ProviderAmbiguous("timeout"), "ambiguous")):
        before = sample("newsletter_provider_batch_errors_total", provider="fake", kind=kind)
        with pytest.raises(type(error)):
            metrics.timed_send(Failing(error), [], key="k")
        assert sample("newsletter_provider_batch_errors_total", provider="fake", kind=kind) - before == 1


def test_sign_ups_unsubscribes_and_webhook_events_are_counted(engine: Engine, database_url: str,
                                                              make_settings: Callable[..., Settings]) -> None:
    seed(engine)
    names = [("newsletter_signups_total", {"stage": "requested"}), ("newsletter_signups_total", {"stage": "confirmed"}),
             ("newsletter_unsubscribes_total", {"channel": "one-click"}),
             ("newsletter_webhook_events_total", {"provider": "postmark", "kind": "hard_bounce"})]
    before = [sample(name, **labels) for name, labels in names]
    auth = {"Authorization": "Basic " + base64.b64encode(b"pm:pw").decode()}
    bounce = {"RecordType": "Bounce", "ID": 7, "Type": "HardBounce", "Email": "all1@example.com", "MessageID": "m"}
    with running(make_settings, database_url, metrics_token=TOKEN, postmark_webhook_username="pm",
                 postmark_webhook_password="pw") as (client, outbox):
        client.post("/subscribe", data={"csrf": csrf(client, "/"), "email": "ann.smith@example.org"})
        assert confirm(client, link_in(outbox, "ann.smith@example.org")).status_code == 200
        _, token = token_for(engine, "all0@example.com")
        assert client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"}).status_code == 200
        for _ in range(2):  # the service's retry of the same event is not a second bounce
            assert client.post("/webhooks/postmark", content=json.dumps(bounce), headers=auth).status_code == 200
        page = client.get("/metrics", headers=BEARER).text
    moved = [sample(name, **labels) - was for (name, labels), was in zip(names, before, strict=True)]
    assert moved == [1, 1, 1, 1]
    assert scraped(page, "newsletter_webhook_events_total", provider="postmark", kind="hard_bounce") == \
        sample("newsletter_webhook_events_total", provider="postmark", kind="hard_bounce")


def test_the_metrics_port_needs_its_token_setting(make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(ConfigError, match="NEWSLETTER_METRICS_PORT is set but NEWSLETTER_METRICS_TOKEN is not"):
        load_settings(_env_file=None, metrics_port=9100)
    with pytest.raises(ConfigError, match=r"NEWSLETTER_METRICS_TOKEN: .*shorter than 16"):
        load_settings(_env_file=None, metrics_token="short")
    with pytest.raises(ConfigError, match=r"NEWSLETTER_METRICS_PORT: .*less than or equal to 65535"):
        load_settings(_env_file=None, metrics_port=70000, metrics_token=TOKEN)


def test_a_taken_metrics_port_is_a_clear_error(make_settings: Callable[..., Settings]) -> None:
    port = free_port()
    first = metrics.expose(make_settings(metrics_port=port, metrics_token=TOKEN))
    assert first is not None
    try:
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}"):
            metrics.expose(make_settings(metrics_port=port, metrics_token=TOKEN))
    finally:
        first.shutdown()
        first.server_close()


@contextmanager
def process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m newsletter ARGS`` running for the block, stopped with SIGTERM after it."""
    with log.open("wb") as out:
        child = subprocess.Popen([sys.executable, "-m", "newsletter", *args], env=env, cwd=log.parent, stdout=out,
                                 stderr=subprocess.STDOUT)
    try:
        yield child
    finally:
        child.send_signal(signal.SIGTERM)
        child.wait(timeout=30)


def scrape_until(url: str, done: Callable[[str], bool], *, seconds: float = 60) -> str:
    """Scrape ``url`` with the token until ``done(page)``; the last page either way."""
    deadline, page = time.monotonic() + seconds, ""
    while time.monotonic() < deadline:
        try:
            page = httpx.get(url, headers=BEARER, timeout=5).text
        except httpx.HTTPError:
            page = ""
        if page and done(page):
            break
        time.sleep(0.2)
    return page


def test_a_worker_serves_its_own_metrics_on_its_port(engine: Engine, database_url: str, tmp_path: Path) -> None:
    directory = seed(engine)
    number = build(engine, directory).number
    assert number is not None and hand_to_workers(engine, number, recipients=directory) == 10
    port, started = free_port(), time.time()
    with WireServer() as server:
        env = os.environ | {
            "NEWSLETTER_DATABASE_URL": database_url, "NEWSLETTER_PROVIDER": "postmark",
            "NEWSLETTER_PROVIDER_BASE_URL": server.url, "NEWSLETTER_PROVIDER_API_KEY": KEY,
            "NEWSLETTER_SECRET_KEY": TEST_SECRET_KEY, "NEWSLETTER_POSTAL_ADDRESS": "1 Test Street",
            "NEWSLETTER_BATCH_SIZE": "3", "NEWSLETTER_WORKER_POLL_SECONDS": "0.2",
            "NEWSLETTER_METRICS_PORT": str(port), "NEWSLETTER_METRICS_TOKEN": TOKEN}
        url = f"http://127.0.0.1:{port}/metrics"
        with process(["worker"], env, tmp_path / "worker.log"):
            page = scrape_until(url, lambda p: scraped(p, "newsletter_messages_total", status="submitted") == 10)
            refused = httpx.get(url, timeout=5)
    assert scraped(page, "newsletter_messages_total", status="submitted") == 10, (tmp_path / "worker.log").read_text()
    assert scraped(page, "newsletter_provider_request_seconds_count", provider="postmark") == 4
    heartbeat = scraped(page, "newsletter_worker_last_round_timestamp_seconds")
    assert heartbeat is not None and started <= heartbeat <= time.time()
    assert refused.status_code == 401


def test_several_uvicorn_workers_report_one_set_of_numbers(engine: Engine, database_url: str, tmp_path: Path) -> None:
    seed(engine)
    port, shared = free_port(), tmp_path / "metrics"
    shared.mkdir()
    (shared / "counter_999999.db").write_bytes(b"stale")  # a file of the last run's worker
    env = os.environ | {"NEWSLETTER_DATABASE_URL": database_url, "NEWSLETTER_SECRET_KEY": TEST_SECRET_KEY,
                        "NEWSLETTER_POSTAL_ADDRESS": "1 Test Street", "NEWSLETTER_OUTBOX_DIR": str(tmp_path / "out"), "NEWSLETTER_METRICS_TOKEN": TOKEN,
                        "PROMETHEUS_MULTIPROC_DIR": str(shared)}
    base = f"http://127.0.0.1:{port}"
    readers = [*(f"all{i}@example.com" for i in range(5)), *(f"design{i}@example.com" for i in range(3))]
    tokens = [token_for(engine, address)[1] for address in readers]

    def one_click(token: str) -> int:  # a connection each, so that both workers take some
        return httpx.post(f"{base}/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"}, timeout=10).status_code

    with process(["serve", "--workers", "2", "--port", str(port)], env, tmp_path / "serve.log"):
        assert scrape_until(f"{base}/metrics", lambda p: "newsletter_database_up" in p), \
            (tmp_path / "serve.log").read_text()
        with ThreadPoolExecutor(4) as pool:
            assert list(pool.map(one_click, tokens)) == [200] * len(tokens)
            pages = list(pool.map(lambda _: httpx.get(f"{base}/metrics", headers=BEARER, timeout=10).text, range(16)))
    counts = {scraped(page, "newsletter_unsubscribes_total", channel="one-click") for page in pages}
    assert counts == {float(len(readers))}, counts
    assert not (shared / "counter_999999.db").exists()


def test_the_scheduler_serves_its_metrics_on_its_port(tmp_path: Path) -> None:
    from newsletter import migrate
    from newsletter.db import make_engine

    database = f"sqlite:///{tmp_path / 'scheduler.db'}"
    engine = make_engine(database)
    migrate.upgrade(engine)
    engine.dispose()
    port = free_port()
    env = os.environ | {"NEWSLETTER_DATABASE_URL": database, "NEWSLETTER_SECRET_KEY": TEST_SECRET_KEY,
                        "NEWSLETTER_POSTAL_ADDRESS": "1 Test Street",
                        "NEWSLETTER_METRICS_PORT": str(port), "NEWSLETTER_METRICS_TOKEN": TOKEN}
    url = f"http://127.0.0.1:{port}/metrics"
    with process(["scheduler"], env, tmp_path / "scheduler.log"):
        page = scrape_until(url, lambda p: "newsletter_messages_total" in p)
        refused = httpx.get(url, timeout=5).status_code
    assert "# TYPE newsletter_messages_total counter" in page, (tmp_path / "scheduler.log").read_text()
    assert "process_resident_memory_bytes" in page  # the process's own figures come along
    assert refused == 401
