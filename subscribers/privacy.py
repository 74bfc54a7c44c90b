"""Data rights and bulk moves: export everything about a subscriber, erase them, CSV import and export."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from newsletter.errors import SubscriberError
from newsletter.models import DeliveryRow
from subscribers import service
from subscribers.models import STATUSES, Subscriber
from subscribers.store import categories_text, normalise_address, stored_forms

CSV_FIELDS = ("email", "name", "categories", "free_only", "status", "consented_at", "confirmed_at")


def erased_address(address: str, secret: str) -> str:
    """What stays of an erased address: a salted hash, enough to keep suppressing it and nothing more."""
    digest = hmac.new(secret.encode(), address.encode(), hashlib.sha256).hexdigest()[:40]
    return f"erased-{digest}@invalid"


def export_subscriber(engine: Engine, address: str) -> dict[str, Any]:
    """Everything stored about the subscriber at ``address``, deliveries included, as JSON-ready data."""
    with Session(engine) as session:
        row = _by_address(session, address)
        deliveries = session.exec(select(DeliveryRow).where(DeliveryRow.subscriber_id == row.id)
                                  .order_by(col(DeliveryRow.id))).all()
        record = {k: _plain(v) for k, v in row.model_dump().items()}
        record["deliveries"] = [{k: _plain(v) for k, v in d.model_dump(
            include={"issue_id", "status", "reason", "submitted_at", "provider_id"}).items()} for d in deliveries]
    return record


def forget(engine: Engine, address: str, *, secret: str) -> None:
    """Erase personal data; keep a salted hash and a suppressing status so the address is never mailed again."""
    with Session(engine) as session:
        row = _by_address(session, address)
        row.email = erased_address(row.email, secret)
        row.name = row.consent_ip = row.consent_user_agent = row.confirmed_ip = row.confirmed_user_agent = None
        row.pending_email = None
        row.status = row.status if row.status in ("bounced", "complained") else "unsubscribed"
        row.erased = True
        service.drop_queued(session, row.id, reason="subscriber erased")
        session.commit()


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
    with Session(engine) as session:
        for number, values in rows:
            email = values["email"]
            erased = [erased_address(form, secret) for form in stored_forms(email)]
            if session.exec(select(Subscriber).where(col(Subscriber.email).in_(erased))).first():
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
            if row.status == "pending" and report.pending is not None and row.id is not None:
                report.pending.append(row.id)
        session.commit()
    return report


def _rows(text: str, source: str) -> Iterable[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or "email" not in reader.fieldnames:
        raise SubscriberError(f"{source}: the first line must name the columns, including 'email'")
    for number, raw in enumerate(reader, start=2):
        values = {k.strip(): (v or "").strip() for k, v in raw.items() if k}
        try:
            values["email"] = normalise_address(values.get("email", ""))
        except SubscriberError as exc:
            raise SubscriberError(f"{source}, line {number}: {exc}") from None
        status = values.get("status") or "pending"
        if status not in STATUSES:
            raise SubscriberError(f"{source}, line {number}: status {status!r} is not one of {', '.join(STATUSES)}")
        yield number, values


def _apply(row: Subscriber, values: dict[str, str], number: int, source: str) -> None:
    row.name = values.get("name") or row.name
    row.categories = categories_text(values.get("categories", "").replace(";", ",").split(","))
    row.free_only = values.get("free_only", "").lower() in ("1", "true", "yes")
    consented = values.get("consented_at")
    status = values.get("status") or "pending"
    if status == "active" and not consented:
        status = "pending"  # no proof of consent: they must confirm first
    if consented:
        try:
            row.consent_at = datetime.combine(date.fromisoformat(consented[:10]), datetime.min.time(), UTC)
        except ValueError:
            raise SubscriberError(f"{source}, line {number}: consented_at {consented!r} is not YYYY-MM-DD") from None
        row.consent_text = f"imported from {source}: consent recorded by the previous system"
    if row.status not in ("bounced", "complained"):
        row.status = status


def export_csv(engine: Engine) -> str:
    """Every subscriber who is not erased, in the import's columns."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS)
    writer.writeheader()
    with Session(engine) as session:
        query = select(Subscriber).where(col(Subscriber.erased).is_(False)).order_by(col(Subscriber.id))
        for row in session.exec(query):
            writer.writerow({"email": row.email, "name": row.name or "", "categories": row.categories,
                             "free_only": "yes" if row.free_only else "", "status": row.status,
                             "consented_at": _plain(row.consent_at) or "",
                             "confirmed_at": _plain(row.confirmed_at) or ""})
    return out.getvalue()


def _by_address(session: Session, address: str) -> Subscriber:
    row = session.exec(select(Subscriber).where(Subscriber.email == normalise_address(address))).first()
    if row is None:
        raise SubscriberError(f"no subscriber with the address {address}")
    return row


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime | date) else value
