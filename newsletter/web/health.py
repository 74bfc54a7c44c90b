"""Probes and metrics: ``/healthz`` (the process answers), ``/readyz`` (the database answers and its schema is
current; 503 otherwise) and ``/metrics`` (Prometheus; 404 unless ``NEWSLETTER_METRICS_TOKEN`` is set, then only
with ``Authorization: Bearer <token>``).

Cheap enough for a load balancer every second: ``/healthz`` touches nothing; ``/readyz`` takes a pooled
connection for ``SELECT 1`` and reads the schema revision only every ``Readiness.ttl`` seconds. Collaborators
come from ``request.app.state``: ``engine`` and ``settings``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

from alembic.runtime.migration import MigrationContext
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from newsletter import metrics, migrate
from newsletter.config import Settings

routes = APIRouter()
log = logging.getLogger("newsletter.web.health")
SCHEMA_TTL = 10.0


class Readiness:
    """Whether the app can serve: the database answers, and its schema was current within ``ttl`` seconds."""

    def __init__(self, engine: Engine, *, ttl: float = SCHEMA_TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self.engine, self.ttl, self.clock = engine, ttl, clock
        self.head = migrate.head()  # read the migration scripts once, not per probe
        self._checked_until = -math.inf
        self._ready = True
        self._lock = threading.Lock()

    def problem(self) -> str | None:
        """None when ready, else what is wrong (said once in the log when it starts, and when it ends)."""
        try:
            found = self._check()
        except SQLAlchemyError as exc:
            found = f"the database is unreachable ({type(exc).__name__})"
        with self._lock:
            if (found is None) != self._ready:
                self._ready = found is None
                log.log(logging.INFO if found is None else logging.WARNING, "ready" if found is None else
                        f"not ready: {found}")
        return found

    def _check(self) -> str | None:
        with self.engine.connect() as connection:
            if self.clock() < self._checked_until:
                connection.execute(text("SELECT 1"))
                return None
            revision = MigrationContext.configure(connection).get_current_revision()
        if revision != self.head:
            return f"the schema is at {revision or 'nothing'}, the code at {self.head}: run `newsletter db upgrade`"
        self._checked_until = self.clock() + self.ttl
        return None


@routes.get("/healthz", include_in_schema=False)
async def healthz() -> JSONResponse:
    """200 while the process answers: for a liveness probe, which should restart it otherwise."""
    return JSONResponse({"status": "ok"})


@routes.get("/readyz", include_in_schema=False)
def readyz(request: Request) -> JSONResponse:
    """200 when the database answers with a current schema, else 503 saying what is wrong: send no traffic."""
    problem = _readiness(request).problem()
    if problem:
        return JSONResponse({"status": "unavailable", "problem": problem}, status_code=503)
    return JSONResponse({"status": "ready"})


@routes.get("/metrics", include_in_schema=False)
def metrics_page(request: Request) -> Response:
    """Prometheus text format to the bearer of ``NEWSLETTER_METRICS_TOKEN``; 404 when no token is set."""
    settings: Settings = request.app.state.settings
    if settings.metrics_token is None:
        raise HTTPException(status_code=404)
    if not metrics.authorized(request.headers.get("authorization"), settings):
        return Response("send Authorization: Bearer $NEWSLETTER_METRICS_TOKEN\n", status_code=401,
                        media_type="text/plain", headers={"WWW-Authenticate": "Bearer"})
    return Response(generate_latest(_registry(request)), media_type=CONTENT_TYPE_LATEST)


def _readiness(request: Request) -> Readiness:
    state = request.app.state
    if getattr(state, "readiness", None) is None:  # made on first use: a race only makes one twice
        state.readiness = Readiness(state.engine)
    readiness: Readiness = state.readiness
    return readiness


def _registry(request: Request) -> CollectorRegistry:
    state = request.app.state
    if getattr(state, "metrics_registry", None) is None:
        state.metrics_registry = metrics.web_registry(state.engine)
    registry: CollectorRegistry = state.metrics_registry
    return registry
