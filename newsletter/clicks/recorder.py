"""Clicks are buffered in memory and written in batches by one thread, off the request path.

A redirect only appends to a list under a lock (microseconds), so a burst (a popular issue, a scanner opening
every link) never waits on the database: the writer drains the buffer every :data:`INTERVAL`, applies the early
rule (``rules``) with one query per batch, and inserts the batch in one transaction. A batch the database refuses
(an outage) stays in the buffer and is tried again; ``close()`` writes what is left, so a server stopped the
ordinary way (SIGTERM, SIGINT, the app's shutdown) loses nothing. A process killed outright loses at most the
clicks of its last :data:`INTERVAL`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from newsletter import metrics
from newsletter.clicks import rules
from newsletter.db import session_scope
from newsletter.models import ClickRow, DeliveryRow
from newsletter.recipients import RecipientSource

INTERVAL = 0.25  # seconds between writes: a quarter second of clicks is one INSERT
log = logging.getLogger("newsletter.clicks")


@dataclass(frozen=True, slots=True)
class Click:
    """A GET of a redirect that passed rules 1 and 2: issue and link row ids, the reader named by a good token (or
    None), and when."""

    issue_id: int
    link_id: int
    reader: int | None
    at: datetime


class ClickRecorder:
    """Buffers :class:`Click`\\ s and writes them in batches from its own thread (started on first use).

    A reader counts as known only while they are an active subscriber (``recipients.by_ids``): an unsubscribed or
    erased reader's old token counts as an anonymous click, so erasure is never undone by a later click.
    """

    def __init__(self, engine: Engine, *, recipients: RecipientSource, interval: float = INTERVAL,
                 background: bool = True) -> None:
        """``background=False`` writes only on :meth:`flush` and :meth:`close` (tests that decide when)."""
        self._engine, self._recipients, self._interval = engine, recipients, interval
        self._buffer: list[Click] = []
        self._lock, self._writing = threading.Lock(), threading.Lock()
        self._stop = threading.Event()
        if not background:
            self._stop.set()
        self._thread: threading.Thread | None = None

    def record(self, click: Click) -> None:
        """Keep ``click`` for the next write; never blocks on the database."""
        with self._lock:
            self._buffer.append(click)
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name="click-writer", daemon=True)
                self._thread.start()

    def pending(self) -> int:
        """How many clicks wait to be written."""
        with self._lock:
            return len(self._buffer)

    def writing(self) -> bool:
        """Whether the writer thread is alive."""
        with self._lock:
            return self._thread is not None and self._thread.is_alive()

    def flush(self) -> int:
        """Write every buffered click now; how many were counted. A database error puts them back and raises."""
        with self._writing:
            with self._lock:
                batch, self._buffer = self._buffer, []
            if not batch:
                return 0
            try:
                return self._write(batch)
            except BaseException:
                with self._lock:
                    self._buffer[:0] = batch
                raise

    def close(self) -> None:
        """Stop the writer thread and write what is left (the app's shutdown calls it)."""
        self._stop.set()
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout=30)
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.flush()
            except SQLAlchemyError as exc:
                log.warning("clicks not written (%s); %d kept for the next try", type(exc).__name__, self.pending())
            except Exception:  # the thread must outlive any one batch's surprise; the clicks stay buffered
                log.exception("clicks not written; %d kept for the next try", self.pending())

    def _write(self, batch: Sequence[Click]) -> int:
        readers = sorted({c.reader for c in batch if c.reader is not None})
        active = set(self._recipients.by_ids(readers)) if readers else set()
        batch = [c if c.reader in active else Click(c.issue_id, c.link_id, None, c.at) for c in batch]
        with session_scope(self._engine) as session:
            counted = _not_early(session, batch)
            rows = _with_firsts(session, counted)
            if rows:
                session.execute(insert(ClickRow), rows)
        metrics.clicks("counted", len(rows))
        metrics.clicks("early", len(batch) - len(rows))
        return len(rows)


def _not_early(session: Session, batch: Sequence[Click]) -> list[Click]:
    """The clicks of ``batch`` that rule 3 keeps, in order; a reader without a submitted delivery of the issue is
    taken as anonymous."""
    own = _submitted(session, batch)
    batch = [c if (c.issue_id, c.reader) in own else Click(c.issue_id, c.link_id, None, c.at) for c in batch]
    times = {issue: _issue_submissions(session, issue, [c.at for c in batch if c.issue_id == issue])
             for issue in {c.issue_id for c in batch if c.reader is None}}
    return [c for c in batch if not (rules.early_for_reader(c.at, own[(c.issue_id, c.reader)]) if c.reader is not None
                                     else rules.early_for_issue(c.at, times[c.issue_id]))]


def _submitted(session: Session, batch: Sequence[Click]) -> dict[tuple[int, int], datetime]:
    """{(issue id, reader): submission time} of the known readers' deliveries, in one query."""
    readers = {c.reader for c in batch if c.reader is not None}
    if not readers:
        return {}
    rows = session.exec(select(DeliveryRow.issue_id, DeliveryRow.subscriber_id, DeliveryRow.submitted_at).where(
        col(DeliveryRow.issue_id).in_({c.issue_id for c in batch}), col(DeliveryRow.subscriber_id).in_(readers),
        col(DeliveryRow.submitted_at).is_not(None)))
    return {(issue, reader): at for issue, reader, at in rows if at is not None}


def _issue_submissions(session: Session, issue_id: int, moments: Sequence[datetime]) -> list[datetime]:
    """The issue's first submission and its distinct submission times that could make one of ``moments`` early,
    sorted (both ranges of the (issue, submitted_at) index); empty when nothing of the issue was submitted."""
    first = session.exec(select(func.min(DeliveryRow.submitted_at)).where(DeliveryRow.issue_id == issue_id)).one()
    if first is None:
        return []
    rows = session.exec(select(DeliveryRow.submitted_at).distinct().where(
        DeliveryRow.issue_id == issue_id, col(DeliveryRow.submitted_at) >= min(moments) - rules.EARLY,
        col(DeliveryRow.submitted_at) <= max(moments)))
    return sorted({first, *(at for at in rows if at is not None)})


def _with_firsts(session: Session, clicks: Sequence[Click]) -> list[dict[str, object]]:
    """The rows to insert, each known reader's first click on a link and in the issue marked as such."""
    readers = {c.reader for c in clicks if c.reader is not None}
    seen_links: set[tuple[int, int]] = set()
    seen_issues: set[tuple[int, int]] = set()
    if readers:
        for issue, link, reader in session.exec(select(ClickRow.issue_id, ClickRow.link_id, ClickRow.subscriber_id)
                                                .where(col(ClickRow.subscriber_id).in_(readers),
                                                       col(ClickRow.issue_id).in_({c.issue_id for c in clicks}))):
            assert reader is not None
            seen_links.add((link, reader))
            seen_issues.add((issue, reader))
    rows: list[dict[str, object]] = []
    for c in clicks:
        first_link = c.reader is not None and (c.link_id, c.reader) not in seen_links
        first_issue = c.reader is not None and (c.issue_id, c.reader) not in seen_issues
        if c.reader is not None:
            seen_links.add((c.link_id, c.reader))
            seen_issues.add((c.issue_id, c.reader))
        rows.append({"issue_id": c.issue_id, "link_id": c.link_id, "subscriber_id": c.reader, "clicked_at": c.at,
                     "first_on_link": first_link, "first_in_issue": first_issue})
    return rows


def forget_reader(session: Session, subscriber_id: int) -> int:
    """Unlink an erased reader from their clicks, keeping the clicks and their first-click marks (so totals and
    unique counts stay); how many clicks were theirs."""
    result = session.execute(update(ClickRow).where(col(ClickRow.subscriber_id) == subscriber_id)
                             .values(subscriber_id=None))
    return int(result.rowcount)  # type: ignore[attr-defined]
