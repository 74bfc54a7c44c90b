"""Subscriber queries, and :class:`SubscriberRecipients`, the recipient source the core sends to."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import idna
from sqlalchemy import bindparam, delete, func, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from newsletter import addresses, zones
from newsletter.db import session_scope
from newsletter.errors import AddressError, SubscriberError
from newsletter.statuses import SubscriberStatus
from newsletter.values import Cohort, Recipient
from subscribers import suppression
from subscribers.models import Subscriber
from subscribers.tokens import Signer

Added = Literal["added", "updated", "unchanged", "erased"]


def normalise_address(address: str) -> str:
    """The address as stored: syntax checked (no DNS lookups), lowercased, an internationalised domain in its
    ASCII (IDNA) form (``user@xn--bcher-kva.example``); SubscriberError if invalid."""
    try:
        return addresses.stored_form(address.strip())
    except AddressError as exc:
        raise SubscriberError(f"{address!r} is not a valid email address: {exc}") from None


def stored_forms(address: str) -> list[str]:
    """The forms a normalised address may have been stored in: itself, and before domains were kept in IDNA
    form, its Unicode domain (an erased address's hash was taken of that)."""
    local, _, domain = address.rpartition("@")
    if "xn--" not in domain:
        return [address]
    try:
        unicode_form = f"{local}@{idna.decode(domain)}"
    except idna.IDNAError:
        return [address]
    return [address, unicode_form] if unicode_form != address else [address]


def erased_address(address: str, secret: str) -> str:
    """What stays of an erased address: a salted hash, enough to keep suppressing it and nothing more."""
    digest = hmac.new(secret.encode(), address.encode(), hashlib.sha256).hexdigest()[:40]
    return f"erased-{digest}@invalid"


def is_erased(session: Session, address: str, secret: str) -> bool:
    """Whether the (normalised) address was erased, in any form it was stored in: every way back in asks this
    before adding anyone."""
    hashes = [erased_address(form, secret) for form in stored_forms(address)]
    return session.exec(select(Subscriber.id).where(col(Subscriber.email).in_(hashes))).first() is not None


def categories_text(categories: Iterable[str]) -> str:
    """Preferences as stored: sorted, de-duplicated, comma-joined; empty means every category."""
    cleaned = {c.strip() for c in categories if c.strip()}
    bad = [c for c in cleaned if "," in c]
    if bad:
        raise SubscriberError(f"category {bad[0]!r} contains a comma; name categories without commas")
    return ",".join(sorted(cleaned))


def zone_text(name: str | None) -> str | None:
    """A time zone as stored: an IANA name, or None for blank (the publication's zone); SubscriberError, saying
    what to give, for a name that is not one."""
    if name is None or not name.strip():
        return None
    try:
        return zones.known_zone(name)
    except ValueError as exc:
        raise SubscriberError(f"{exc}; leave it empty for the publication's zone") from None


def add_active(
    session: Session, addresses: Sequence[str], *, categories: Sequence[str] = (), free_only: bool = False,
    now: datetime | None = None, secret: str | None = None,
) -> list[tuple[str, Added]]:
    """Add or update subscribers as active (the operator vouches for consent); all addresses or none.

    With ``secret``, an address erased earlier is left out and reported ``erased``: erasure is for good.
    """
    normalised = [normalise_address(a) for a in addresses]
    prefs = categories_text(categories)
    moment = now or datetime.now(UTC)
    outcome: list[tuple[str, Added]] = []
    for address in dict.fromkeys(normalised):
        if secret is not None and is_erased(session, address, secret):
            outcome.append((address, "erased"))
            continue
        row = session.exec(select(Subscriber).where(Subscriber.email == address)).first()
        if row is None:
            session.add(Subscriber(email=address, status=SubscriberStatus.ACTIVE, categories=prefs, free_only=free_only,
                                   created_at=moment, confirmed_at=moment))
            outcome.append((address, "added"))
            continue
        wanted = (SubscriberStatus.ACTIVE, prefs, free_only)
        if (row.status, row.categories, row.free_only) == wanted:
            outcome.append((address, "unchanged"))
            continue
        row.status, row.categories, row.free_only = wanted
        row.confirmed_at = row.confirmed_at or moment
        outcome.append((address, "updated"))
    return outcome


def zones_in_use(session: Session) -> list[str | None]:
    """The distinct time zones of active subscribers (None: the publication's), for counting a wave's zones."""
    query = select(Subscriber.time_zone).where(Subscriber.status == SubscriberStatus.ACTIVE).distinct()
    return list(session.exec(query))


def page(session: Session, *, after: int = 0, limit: int = 100, status: str | None = None) -> list[Subscriber]:
    """Subscribers with id greater than ``after``, ascending: keyset pagination, steady at any depth."""
    query = select(Subscriber).where(col(Subscriber.id) > after)
    if status:
        query = query.where(Subscriber.status == status)
    return list(session.exec(query.order_by(col(Subscriber.id)).limit(limit)))


def by_ids(engine: Engine, ids: Sequence[int]) -> list[Subscriber]:
    """Subscribers with these ids, by id."""
    with session_scope(engine) as session:
        return list(session.exec(select(Subscriber).where(col(Subscriber.id).in_(ids)).order_by(col(Subscriber.id))))


def count_by_status(session: Session) -> dict[str, int]:
    """How many subscribers are in each status."""
    rows = session.exec(select(Subscriber.status, func.count()).group_by(Subscriber.status))
    return {status: count for status, count in rows}


def cohort_of(row: Subscriber) -> Cohort:
    """The cohort a subscriber's preferences put them in."""
    return cohort_from(row.categories, row.free_only)


def cohort_from(categories: str, free_only: bool) -> Cohort:
    """The cohort for stored preferences (a comma list of categories and the free-only flag)."""
    return Cohort(frozenset(c for c in categories.split(",") if c), free_only)


@dataclass(frozen=True)
class Links:
    """Builds a subscriber's signed links under the app's public URL."""

    signer: Signer
    public_url: str
    unsubscribe_mailbox: str

    def recipient(self, row: Subscriber) -> Recipient:
        """The recipient value for ``row``, with its manage and unsubscribe links."""
        assert row.id is not None
        return self.for_address(row.id, row.email)

    def for_address(self, subscriber_id: int, address: str) -> Recipient:
        """The recipient value for a subscriber id and address."""
        base = self.public_url.rstrip("/")
        unsubscribe = self.signer.mint("unsubscribe", subscriber_id)
        manage = self.signer.mint("manage", subscriber_id)
        # Tokens are URL-safe already (base64url and '.'); only the space needs escaping.
        mailto = f"mailto:{self.unsubscribe_mailbox}?subject=unsubscribe%20{unsubscribe}"
        return Recipient(subscriber_id, address, f"{base}/unsubscribe/{unsubscribe}", f"{base}/preferences/{manage}",
                         mailto)


class SubscriberRecipients:
    """Active subscribers as the core sees them (implements ``newsletter.recipients.RecipientSource``)."""

    def __init__(self, engine: Engine, links: Links) -> None:
        self._engine = engine
        self._links = links

    def cohorts(self) -> list[tuple[Cohort, int]]:
        """Distinct preference sets among active subscribers, with their sizes (one grouped query)."""
        query = (select(Subscriber.categories, Subscriber.free_only, func.count())
                 .where(Subscriber.status == SubscriberStatus.ACTIVE, col(Subscriber.pause_remaining) == 0)
                 .group_by(col(Subscriber.categories), col(Subscriber.free_only)))
        with session_scope(self._engine) as session:
            rows = session.exec(query).all()
        found = [(cohort_from(c, f), n) for c, f, n in rows]
        return sorted(found, key=lambda item: item[0].key)

    def recipient_ids(self, cohort: Cohort, *, after: int, limit: int) -> list[int]:
        """Active subscribers of ``cohort`` after ``after``; served by the (status, categories, free_only, id) index."""
        query = (select(Subscriber.id)
                 .where(Subscriber.status == SubscriberStatus.ACTIVE,
                        Subscriber.categories == categories_text(cohort.categories),
                        Subscriber.free_only == cohort.free_only, col(Subscriber.pause_remaining) == 0,
                        col(Subscriber.id) > after)
                 .order_by(col(Subscriber.id)).limit(limit))
        with session_scope(self._engine) as session:
            return [i for i in session.exec(query) if i is not None]

    def by_ids(self, ids: Sequence[int], *, active_only: bool = True) -> dict[int, Recipient]:
        """Recipients for the ids still active (any status with ``active_only=False``); unknown ids are left out.

        Reads two columns rather than whole rows: this runs once per batch on the send's hot path.
        """
        query = select(Subscriber.id, Subscriber.email).where(col(Subscriber.id).in_(bindparam("ids", expanding=True)))
        if active_only:
            query = query.where(Subscriber.status == SubscriberStatus.ACTIVE)
        with session_scope(self._engine) as session:
            rows = session.exec(query, params={"ids": list(ids)}).all()
        return {i: self._links.for_address(i, email) for i, email in rows if i is not None}

    def voter_token(self, subscriber_id: int, issue_number: int) -> str:
        """The reader's voter token for this issue (``Signer.mint_voter``)."""
        return self._links.signer.mint_voter(subscriber_id, issue_number)

    def time_zones(self, ids: Sequence[int]) -> dict[int, str | None]:
        """Each subscriber's zone (None: the publication's); unknown ids are left out. Two columns, by primary key."""
        query = select(Subscriber.id, Subscriber.time_zone).where(
            col(Subscriber.id).in_(bindparam("ids", expanding=True)))
        with session_scope(self._engine) as session:
            rows = session.exec(query, params={"ids": list(ids)}).all()
        return {i: zone for i, zone in rows if i is not None}

    def issue_built(self) -> None:
        """Count one skipped issue off every pause."""
        with session_scope(self._engine) as session:
            session.exec(update(Subscriber).where(col(Subscriber.pause_remaining) > 0)
                         .values(pause_remaining=Subscriber.pause_remaining - 1))

    def suppress(self, ids: Sequence[int], *, reason: str) -> None:
        """Mark active subscribers ``bounced`` (the only permanent refusal a send can report), their queued
        deliveries withdrawn."""
        if reason != SubscriberStatus.BOUNCED:
            raise SubscriberError(f"cannot suppress for {reason!r}; sends only report bounces")
        with session_scope(self._engine) as session:
            suppression.suppress(session, ids, SubscriberStatus.BOUNCED, channel="bounce", moment=datetime.now(UTC),
                                 replaces={SubscriberStatus.ACTIVE})

    def purge_pending(self, older_than: datetime) -> int:
        """Delete sign-ups never confirmed whose last confirmation email went out before ``older_than``.

        Their consent evidence goes with them: an unconfirmed request is no consent worth keeping.
        """
        last_asked = func.coalesce(Subscriber.confirmation_sent_at, Subscriber.created_at)
        with session_scope(self._engine) as session:
            result = session.exec(delete(Subscriber).where(
                col(Subscriber.status) == SubscriberStatus.PENDING, last_asked < older_than))
        return int(result.rowcount)

    def find(self, address: str) -> tuple[Recipient, Cohort] | None:
        """An active subscriber by address, with their cohort."""
        with session_scope(self._engine) as session:
            row = session.exec(select(Subscriber).where(Subscriber.email == normalise_address(address))).first()
        if row is None or row.status != SubscriberStatus.ACTIVE:
            return None
        return self._links.recipient(row), cohort_of(row)
