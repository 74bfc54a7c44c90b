"""Data rights and bulk moves: export everything about a subscriber, erase them, CSV import and export."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from newsletter import votes
from newsletter.clicks.recorder import forget_reader
from newsletter.clicks.stats import reader_clicks
from newsletter.db import session_scope
from newsletter.errors import SubscriberError
from newsletter.models import DeliveryRow
from newsletter.statuses import REPORTED, SubscriberStatus
from subscribers.models import STATUSES, AddressChangeMail, Subscriber
from subscribers.store import categories_text, is_erased, normalise_address, zone_text
from subscribers.store import erased_address as erased_address  # where erasure is documented
from subscribers.suppression import suppress

CSV_FIELDS = ("email", "name", "categories", "free_only", "time_zone", "status", "consented_at", "confirmed_at")
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection): such cells leave with a
# leading apostrophe, which spreadsheets hide, and the import takes it off again.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def export_subscriber(engine: Engine, address: str) -> dict[str, Any]:
    """Everything stored about the subscriber at ``address``, deliveries included, as JSON-ready data."""
    with session_scope(engine) as session:
        row = _by_address(session, address)
        deliveries = session.exec(select(DeliveryRow).where(DeliveryRow.subscriber_id == row.id)
                                  .order_by(col(DeliveryRow.id))).all()
        record = {k: _plain(v) for k, v in row.model_dump().items()}
        record["deliveries"] = [{k: _plain(v) for k, v in d.model_dump(
            include={"issue_id", "status", "reason", "submitted_at", "provider_id", "due_at"}).items()}
            for d in deliveries]
        assert row.id is not None
        record["votes"] = votes.readers_votes(session, row.id)
        record["clicks"] = reader_clicks(session, row.id)  # only with NEWSLETTER_TRACK_READERS are any theirs
    return record


def forget(engine: Engine, address: str, *, secret: str) -> None:
    """Erase personal data; keep a salted hash and a suppressing status so the address is never mailed again.

    Their votes stay in the counts with no link to them (``votes.unlink_reader``)."""
    with session_scope(engine) as session:
        row = _by_address(session, address)
        assert row.id is not None
        # An address change to this address, still unconfirmed, must not bring it back either.
        session.exec(update(Subscriber).where(col(Subscriber.pending_email) == row.email).values(pending_email=None))
        row.email = erased_address(row.email, secret)
        row.name = row.consent_ip = row.consent_user_agent = row.confirmed_ip = row.confirmed_user_agent = None
        row.pending_email = None
        row.erased = True
        # Nothing says when: an erased reader leaves no trace but the status that keeps the address suppressed.
        suppress(session, [row.id], SubscriberStatus.UNSUBSCRIBED, channel="erasure", moment=datetime.now(UTC),
                 reason="subscriber erased", stamp=False)
        session.exec(delete(AddressChangeMail).where(col(AddressChangeMail.subscriber_id) == row.id))
        votes.unlink_reader(session, row.id)  # the votes keep counting; they no longer say whose they were
        forget_reader(session, row.id)  # their clicks stay counted, no longer theirs


@dataclass
class ImportReport:
    """What a CSV import did."""

    added: int = 0
    updated: int = 0
    pending: list[int] | None = None
    skipped: int = 0


def import_csv(engine: Engine, text: str, *, secret: str, source: str = "csv") -> ImportReport:
    """Import rows (all or none). Rows without proof of consent (an active status *and* a consented_at date)
    start as pending; erased addresses are skipped. ``pending`` lists whom to send a confirmation to."""
    rows = list(_rows(text, source))
    report = ImportReport(pending=[])
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        for number, values in rows:
            email = values["email"]
            if is_erased(session, email, secret):
                report.skipped += 1
                continue
            row = session.exec(select(Subscriber).where(Subscriber.email == email)).first()
            if row is None:
                row = Subscriber(email=email, created_at=now, source=source)
                session.add(row)
                report.added += 1
            else:
                report.updated += 1
            _apply(row, values, number, source)
            session.flush()
            if row.status == SubscriberStatus.PENDING and report.pending is not None and row.id is not None:
                report.pending.append(row.id)
    return report


def _rows(text: str, source: str) -> Iterable[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or "email" not in reader.fieldnames:
        raise SubscriberError(f"{source}: the first line must name the columns, including 'email'")
    for number, raw in enumerate(reader, start=2):
        values = {k.strip(): unescape_cell((v or "").strip()) for k, v in raw.items() if k}
        try:
            values["email"] = normalise_address(values.get("email", ""))
        except SubscriberError as exc:
            raise SubscriberError(f"{source}, line {number}: {exc}") from None
        try:
            values["time_zone"] = zone_text(values.get("time_zone")) or ""
        except SubscriberError as exc:
            raise SubscriberError(f"{source}, line {number}: time_zone: {exc}") from None
        status = values.get("status") or SubscriberStatus.PENDING
        if status not in STATUSES:
            raise SubscriberError(f"{source}, line {number}: status {status!r} is not one of {', '.join(STATUSES)}")
        yield number, values


def _apply(row: Subscriber, values: dict[str, str], number: int, source: str) -> None:
    row.name = values.get("name") or row.name
    row.categories = categories_text(values.get("categories", "").replace(";", ",").split(","))
    row.free_only = values.get("free_only", "").lower() in ("1", "true", "yes")
    row.time_zone = values.get("time_zone") or None  # empty or no column: the publication's zone
    consented = values.get("consented_at")
    status = values.get("status") or SubscriberStatus.PENDING
    if status == SubscriberStatus.ACTIVE and not consented:
        status = SubscriberStatus.PENDING  # no proof of consent: they must confirm first
    if consented:
        try:
            row.consent_at = datetime.combine(date.fromisoformat(consented[:10]), datetime.min.time(), UTC)
        except ValueError:
            raise SubscriberError(f"{source}, line {number}: consented_at {consented!r} is not YYYY-MM-DD") from None
        row.consent_text = f"imported from {source}: consent recorded by the previous system"
    if row.status not in REPORTED:
        row.status = status


def export_csv(engine: Engine) -> str:
    """Every subscriber who is not erased, in the import's columns."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS)
    writer.writeheader()
    with session_scope(engine) as session:
        query = select(Subscriber).where(col(Subscriber.erased).is_(False)).order_by(col(Subscriber.id))
        for row in session.exec(query):
            cells = {"email": row.email, "name": row.name or "", "categories": row.categories,
                     "free_only": "yes" if row.free_only else "", "time_zone": row.time_zone or "",
                     "status": row.status,
                     "consented_at": _plain(row.consent_at) or "", "confirmed_at": _plain(row.confirmed_at) or ""}
            writer.writerow({k: escape_cell(v) for k, v in cells.items()})
    return out.getvalue()


def escape_cell(value: str) -> str:
    """The cell as exported: an apostrophe before anything a spreadsheet would run as a formula."""
    return f"'{value}" if _formula(value) else value


def unescape_cell(value: str) -> str:
    """The cell as imported: the apostrophe ``escape_cell`` added, taken off again (an exact round trip)."""
    return value[1:] if value.startswith("'") and _formula(value) else value


def _formula(value: str) -> bool:
    # Apostrophes already in front count too, so that a value that itself starts with "'=" survives the trip.
    return value.lstrip("'")[:1] in FORMULA_START


def _by_address(session: Session, address: str) -> Subscriber:
    row = session.exec(select(Subscriber).where(Subscriber.email == normalise_address(address))).first()
    if row is None:
        raise SubscriberError(f"no subscriber with the address {address}")
    return row


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime | date) else value
