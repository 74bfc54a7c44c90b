"""Catalog sync: fetch the site's verdict export (the JSON import format) and import it.

Conditional GETs (``If-None-Match`` / ``If-Modified-Since``) make an unchanged export cost one 304. A failed
or malformed fetch changes nothing stored: the week is built from the catalog as it was, and the warning is
kept (and logged) so the editor's desk can show it until a later sync succeeds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from newsletter.catalog import store
from newsletter.catalog.json_format import parse_json
from newsletter.clock import SYSTEM, Clock
from newsletter.db import session_scope
from newsletter.errors import CatalogError
from newsletter.models import CatalogSyncRow

log = logging.getLogger("newsletter.catalog")
MAX_BYTES = 50 * 1024 * 1024  # a verdict export is a few megabytes; refuse to buffer anything absurd


@dataclass(frozen=True, slots=True)
class SyncOutcome:
    """What a sync did: ``changed`` (imported), ``unchanged`` (304) or ``failed`` (with the warning)."""

    status: Literal["changed", "unchanged", "failed"]
    detail: str


def sync_catalog(engine: Engine, url: str, *, transport: httpx.BaseTransport | None = None,
                 timeout: float = 30.0, clock: Clock = SYSTEM) -> SyncOutcome:
    """Fetch ``url`` conditionally and import it all-or-nothing, noting when by ``clock``; never raises for a bad
    fetch or bad export."""
    with session_scope(engine) as session:
        state = _state(session, url)
        headers = {k: v for k, v in (("If-None-Match", state.etag), ("If-Modified-Since", state.last_modified)) if v}
    try:
        status, body, validators = _fetch(url, headers, transport, timeout)
    except (httpx.HTTPError, CatalogError) as exc:
        return _failed(engine, url, f"the catalog export at {url} could not be fetched: {exc}", clock)
    if status == 304:
        return _record(engine, url, SyncOutcome("unchanged", "the export has not changed since the last sync"), clock)
    if status != 200:
        return _failed(engine, url, f"the catalog export at {url} answered HTTP {status}", clock)
    try:
        batch = parse_json(body, source=url)
        with session_scope(engine) as session:
            summary = store.apply_batches(session, [batch])
    except CatalogError as exc:
        return _failed(engine, url, f"the catalog export was not imported, nothing changed: {exc}", clock)
    return _record(engine, url, SyncOutcome("changed", summary.describe()), clock, validators)


def _fetch(url: str, headers: dict[str, str], transport: httpx.BaseTransport | None,
           timeout: float) -> tuple[int, str, tuple[str | None, str | None]]:
    with httpx.Client(transport=transport, timeout=timeout, follow_redirects=True) as client, \
            client.stream("GET", url, headers=headers) as response:
        chunks, size = [], 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > MAX_BYTES:
                raise CatalogError(f"the export is larger than {MAX_BYTES // (1024 * 1024)} MB")
            chunks.append(chunk)
        body = b"".join(chunks).decode(response.encoding or "utf-8", errors="replace")
        return response.status_code, body, (response.headers.get("etag"), response.headers.get("last-modified"))


def _state(session: Session, url: str) -> CatalogSyncRow:
    row = session.exec(select(CatalogSyncRow).where(CatalogSyncRow.url == url)).first()
    if row is None:
        row = CatalogSyncRow(url=url)
        session.add(row)
        session.flush()
    return row


def _failed(engine: Engine, url: str, warning: str, clock: Clock) -> SyncOutcome:
    log.warning("%s; building from the catalog as stored", warning)
    return _record(engine, url, SyncOutcome("failed", warning), clock)


def _record(engine: Engine, url: str, outcome: SyncOutcome, clock: Clock,
            validators: tuple[str | None, str | None] | None = None) -> SyncOutcome:
    now = clock.now()
    with session_scope(engine) as session:
        row = _state(session, url)
        row.checked_at = now
        row.warning = outcome.detail if outcome.status == "failed" else None
        if validators is not None:
            row.etag, row.last_modified = validators
            row.changed_at = now
    return outcome


def latest_warning(session: Session) -> tuple[str, datetime | None] | None:
    """The standing warning of the last failed sync, if the last sync failed: (text, when)."""
    row = session.exec(select(CatalogSyncRow).order_by(col(CatalogSyncRow.checked_at).desc())).first()
    if row is None or row.warning is None:
        return None
    return row.warning, row.checked_at
