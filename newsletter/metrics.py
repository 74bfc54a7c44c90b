"""Prometheus metrics: plain functions the send loop, webhooks and sign-ups call, and what serves them.

Where numbers come from:

- **The database, at scrape time** (:class:`DatabaseCollector`, served by the web app only): deliveries of the
  latest issues by status, queue depth of each issue being sent. Every web worker reads the same rows, so these
  agree whichever worker answers, and no worker or scheduler reports them twice.
- **Counters in the process that did the work:** messages by outcome and provider timings in whoever sends
  (worker, scheduler); sign-ups, unsubscribes and webhook events in the web app; the worker heartbeat.

Workers and the scheduler serve theirs on ``NEWSLETTER_METRICS_PORT`` (:func:`expose`), one scrape target per
process, on whatever machine it runs. The web app's uvicorn workers share a directory in prometheus_client's
multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, which ``newsletter serve --workers N`` makes when it is
unset), so ``/metrics`` sums them all whichever worker answers. Both answer only with
``Authorization: Bearer $NEWSLETTER_METRICS_TOKEN``.
"""

from __future__ import annotations

import hmac
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from newsletter.config import Settings
from newsletter.errors import (
    ConfigError,
    ProviderAmbiguous,
    ProviderAuthError,
    ProviderError,
    ProviderRequestError,
    ProviderUnavailable,
)
from newsletter.models import DeliveryRow, IssueRow
from newsletter.values import Message, SendResult

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATEST_ISSUES = 5
_SECONDS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
MESSAGES = Counter("newsletter_messages", "Messages a send recorded, by outcome (submitted, rejected, failed, "
                   "dropped)", ["status"])
BATCH_SECONDS = Histogram("newsletter_provider_batch_seconds", "Time a provider took over one batch, retries and "
                          "rate-limit waits included", ["provider"], buckets=_SECONDS)
BATCH_ERRORS = Counter("newsletter_provider_batch_errors", "Batches a provider failed whole, by kind (unavailable, "
                       "auth, refused, ambiguous)", ["provider", "kind"])
REQUEST_SECONDS = Histogram("newsletter_provider_request_seconds", "Time to a provider's HTTP answer, per request",
                            ["provider"], buckets=_SECONDS)
REQUEST_ERRORS = Counter("newsletter_provider_request_errors", "Provider HTTP requests that failed, by kind "
                         "(rate_limited, auth, server_error, timeout, connection)", ["provider", "kind"])
WEBHOOK_EVENTS = Counter("newsletter_webhook_events", "Webhook events received for the first time, by service "
                         "and kind", ["provider", "kind"])
SIGNUPS = Counter("newsletter_signups", "Sign-ups, by stage (requested, confirmed)", ["stage"])
UNSUBSCRIBES = Counter("newsletter_unsubscribes", "Readers who unsubscribed, by channel", ["channel"])
CLICKS = Counter("newsletter_clicks", "Links of issues followed through the redirect, by what became of them "
                 "(counted, early, scanner)", ["outcome"])
HEARTBEAT = Gauge("newsletter_worker_last_round_timestamp_seconds", "When this worker last polled or recorded a "
                  "batch (Unix time)", multiprocess_mode="max")
_BATCH_KINDS: tuple[tuple[type[ProviderError], str], ...] = (
    (ProviderAuthError, "auth"), (ProviderAmbiguous, "ambiguous"), (ProviderRequestError, "refused"),
    (ProviderUnavailable, "unavailable"))


def outcomes(results: Iterable[SendResult], *, failed: int = 0, dropped: int = 0) -> None:
    """Count one recorded batch: each result by its status, plus ``failed`` and ``dropped`` deliveries."""
    for result in results:
        MESSAGES.labels(result.status).inc()
    if failed:
        MESSAGES.labels("failed").inc(failed)
    if dropped:
        MESSAGES.labels("dropped").inc(dropped)


def timed_send(provider: Any, messages: Sequence[Message], *, key: str) -> list[SendResult]:
    """``provider.send_batch(messages, key=key)``, timed, and a whole-batch failure counted by its kind."""
    name = str(getattr(provider, "name", "unknown"))
    started = time.monotonic()
    try:
        results: list[SendResult] = provider.send_batch(messages, key=key)
    except ProviderError as exc:
        kind = next((k for cls, k in _BATCH_KINDS if isinstance(exc, cls)), "other")
        BATCH_ERRORS.labels(name, kind).inc()
        raise
    finally:
        BATCH_SECONDS.labels(name).observe(time.monotonic() - started)
    return results


class TimedTransport(httpx.BaseTransport):
    """An httpx transport that times each request to a provider and counts its failures by kind."""

    def __init__(self, inner: httpx.BaseTransport | None, provider: str) -> None:
        # Without a transport of its own, httpx's own choice per URL is used: direct, or the proxy that
        # HTTPS_PROXY / NO_PROXY name (a client given a transport would otherwise ignore them).
        self.inner, self.provider = inner, provider
        self._router = httpx.Client() if inner is None else None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send through the wrapped transport; a 429, 401/403 or 5xx answer is counted and passed on as it is."""
        inner = self.inner or self._router._transport_for_url(request.url)  # type: ignore[union-attr]
        started = time.monotonic()
        try:
            response = inner.handle_request(request)
        except httpx.TimeoutException:
            REQUEST_ERRORS.labels(self.provider, "timeout").inc()
            raise
        except httpx.TransportError:
            REQUEST_ERRORS.labels(self.provider, "connection").inc()
            raise
        finally:
            REQUEST_SECONDS.labels(self.provider).observe(time.monotonic() - started)
        kind = _answer_kind(response.status_code)
        if kind:
            REQUEST_ERRORS.labels(self.provider, kind).inc()
        return response

    def close(self) -> None:
        """Close the wrapped transport (or httpx's own)."""
        if self.inner is not None:
            self.inner.close()
        if self._router is not None:
            self._router.close()


def timed_transport(transport: httpx.BaseTransport | None, provider: str) -> httpx.BaseTransport:
    """``transport`` (default: httpx's own, proxies from the environment included) timed for ``provider``."""
    return TimedTransport(transport, provider)


def _answer_kind(status: int) -> str | None:
    if status == 429:
        return "rate_limited"
    if status in (401, 403):
        return "auth"
    return "server_error" if status >= 500 else None


def webhook_events(kinds: Iterable[tuple[str, str]]) -> None:
    """Count applied webhook events, each a (service, kind); an ``unsubscribe`` counts as an unsubscribe too."""
    for provider, kind in kinds:
        WEBHOOK_EVENTS.labels(provider, kind).inc()
        if kind == "unsubscribe":
            UNSUBSCRIBES.labels(provider).inc()


def signup(stage: str) -> None:
    """Count a sign-up at ``stage``: ``requested`` (a confirmation goes out) or ``confirmed``."""
    SIGNUPS.labels(stage).inc()


def clicks(outcome: str, count: int = 1) -> None:
    """Count ``count`` redirects: ``counted`` (written), ``early`` (within seconds of a submission) or ``scanner``."""
    if count:
        CLICKS.labels(outcome).inc(count)


def unsubscribed(channel: str, *, changed: bool = True) -> None:
    """Count a reader who left through ``channel`` (one-click, page, a service's name); nothing unless ``changed``."""
    if changed:
        UNSUBSCRIBES.labels(channel).inc()


def heartbeat(now: Callable[[], float] = time.time) -> None:
    """Mark this worker alive now: it polled for work or recorded a batch."""
    HEARTBEAT.set(now())


class DatabaseCollector(Collector):
    """Delivery counts read at scrape time: one grouped count over the claim index per scrape."""

    def __init__(self, engine: Engine, *, latest: int = LATEST_ISSUES) -> None:
        self.engine, self.latest = engine, latest

    def describe(self) -> list[Metric]:
        """Nothing: registering must not query the database."""
        return []

    def collect(self) -> Iterator[Metric]:
        """``newsletter_deliveries{issue,status}`` and ``newsletter_queue_depth{issue}`` of the latest issues and of
        every issue being sent or paused; ``newsletter_database_up`` 0 (and nothing else) when the query fails."""
        up = GaugeMetricFamily("newsletter_database_up", "Whether the scrape could read the database")
        try:
            issues, counts = self._read()
        except SQLAlchemyError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        deliveries = GaugeMetricFamily("newsletter_deliveries", "Deliveries by status, of the latest issues and of "
                                       "those being sent", labels=["issue", "status"])
        depth = GaugeMetricFamily("newsletter_queue_depth", "Queued deliveries of each issue being sent or paused",
                                  labels=["issue"])
        sending = GaugeMetricFamily("newsletter_issue_sending", "1 for each issue whose status is sending",
                                    labels=["issue"])
        for issue_id, (number, status) in issues.items():
            for delivery_status, count in counts.get(issue_id, {}).items():
                deliveries.add_metric([str(number), delivery_status], count)
            if status in ("sending", "paused"):
                depth.add_metric([str(number)], counts.get(issue_id, {}).get("queued", 0))
            sending.add_metric([str(number)], 1 if status == "sending" else 0)
        yield from (up, deliveries, depth, sending)

    def _read(self) -> tuple[dict[int, tuple[int, str]], dict[int, dict[str, int]]]:
        issue = IssueRow.__table__  # type: ignore[attr-defined]
        delivery = DeliveryRow.__table__  # type: ignore[attr-defined]
        with self.engine.connect() as connection:
            latest = select(issue.c.id).order_by(issue.c.number.desc()).limit(self.latest).scalar_subquery()
            rows = connection.execute(select(issue.c.id, issue.c.number, issue.c.status).where(
                issue.c.id.in_(latest) | issue.c.status.in_(("sending", "paused")))).all()
            issues = {row.id: (row.number, row.status) for row in rows}
            counts: dict[int, dict[str, int]] = {}
            if issues:
                grouped = select(delivery.c.issue_id, delivery.c.status, func.count()).where(
                    delivery.c.issue_id.in_(list(issues))).group_by(delivery.c.issue_id, delivery.c.status)
                for issue_id, status, count in connection.execute(grouped):
                    counts.setdefault(issue_id, {})[status] = count
        return issues, counts


class _ThisProcess(Collector):
    """The process's own registry (counters, histograms, process_* figures), as one collector."""

    def collect(self) -> Iterator[Metric]:
        """Everything the default registry holds."""
        yield from REGISTRY.collect()


def web_registry(engine: Engine) -> CollectorRegistry:
    """What the web app's ``/metrics`` serves: every uvicorn worker's counters (multiprocess mode, when
    ``PROMETHEUS_MULTIPROC_DIR`` is set) or this process's, plus the database's counts."""
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(_ThisProcess())
    registry.register(DatabaseCollector(engine))
    return registry


def prepare_web(workers: int) -> Path | None:
    """Before ``newsletter serve`` starts ``workers`` processes: with more than one, a fresh directory for them to
    share (``PROMETHEUS_MULTIPROC_DIR``: made when unset, its old files removed when set); returns it."""
    given = os.environ.get(MULTIPROC_ENV)
    if workers <= 1 and not given:
        return None
    folder = Path(given) if given else Path(tempfile.mkdtemp(prefix="newsletter-metrics-"))
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):  # the last run's processes are gone; this one's own files stay
        if not stale.stem.endswith(f"_{os.getpid()}"):
            stale.unlink()
    os.environ[MULTIPROC_ENV] = str(folder)
    return folder


def authorized(header: str | None, settings: Settings) -> bool:
    """Whether an Authorization header carries ``Bearer $NEWSLETTER_METRICS_TOKEN`` (compared in constant time)."""
    if settings.metrics_token is None or not header:
        return False
    expected = f"Bearer {settings.metrics_token.get_secret_value()}".encode()
    return hmac.compare_digest(header.strip().encode("utf-8", "surrogateescape"), expected)


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes leave no line in the log."""


def expose(settings: Settings, *, registry: CollectorRegistry = REGISTRY) -> WSGIServer | None:
    """Serve this process's metrics on ``NEWSLETTER_METRICS_HOST:NEWSLETTER_METRICS_PORT`` from a daemon thread,
    only to the bearer token (else 401); None when no port is set, ConfigError when the port is taken."""
    if settings.metrics_port is None:
        return None
    metrics_app = make_wsgi_app(registry)

    def guarded(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if not authorized(environ.get("HTTP_AUTHORIZATION"), settings):
            start_response("401 Unauthorized", [("WWW-Authenticate", "Bearer"), ("Content-Type", "text/plain")])
            return [b"send Authorization: Bearer $NEWSLETTER_METRICS_TOKEN\n"]
        return metrics_app(environ, start_response)  # type: ignore[no-any-return]

    try:
        server = make_server(settings.metrics_host, settings.metrics_port, guarded, handler_class=_Quiet)
    except OSError as exc:
        raise ConfigError(f"NEWSLETTER_METRICS_PORT: cannot listen on {settings.metrics_host}:{settings.metrics_port}"
                          f" ({exc.strerror}); pick a free port for each process") from None
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
