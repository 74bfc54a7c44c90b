"""The recipient source: the small protocol through which the core sees subscribers.

``subscribers.store.SubscriberRecipients`` implements it; the composition root hands it out as ``Wiring.recipients``,
and every core function that needs it takes a parameter named ``recipients``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from newsletter.values import Cohort, Recipient


class RecipientSource(Protocol):
    """Active subscribers, grouped into cohorts, addressable by id."""

    def cohorts(self) -> list[tuple[Cohort, int]]:
        """Every cohort with at least one active subscriber, and how many it has."""
        ...

    def recipient_ids(self, cohort: Cohort, *, after: int, limit: int) -> list[int]:
        """Ids of active subscribers in ``cohort`` greater than ``after``, ascending (keyset page)."""
        ...

    def by_ids(self, ids: Sequence[int], *, active_only: bool = True) -> dict[int, Recipient]:
        """Recipients for those ids that are still active (with ``active_only=False``: whatever their status, to
        rebuild a batch exactly as it was first sent); the rest are absent from the answer."""
        ...

    def voter_token(self, subscriber_id: int, issue_number: int) -> str:
        """The reader's signed token for this issue, bound to both: what their vote links carry."""
        ...

    def time_zones(self, ids: Sequence[int]) -> dict[int, str | None]:
        """The IANA zone of each of these subscribers, whatever their status (None: the publication's zone)."""
        ...

    def find(self, address: str) -> tuple[Recipient, Cohort] | None:
        """An active subscriber by address, with the cohort their preferences put them in."""
        ...

    def issue_built(self) -> None:
        """An issue was built: each paused subscriber has one fewer issue left to skip."""
        ...

    def suppress(self, ids: Sequence[int], *, reason: str) -> None:
        """Stop mailing these subscribers: the provider said their address will never take mail."""
        ...

    def purge_pending(self, older_than: datetime) -> int:
        """Delete sign-ups left unconfirmed since before ``older_than``; returns how many."""
        ...
