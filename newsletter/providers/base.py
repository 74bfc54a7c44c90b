"""The one provider contract (after Django's mail backends): open, close, send_messages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import ClassVar, Self

from newsletter.values import Message, SendResult


class Provider:
    """Hands messages to one mail service.

    ``send_messages`` returns one SendResult per message, in order. A refusal of one recipient is data
    (``rejected`` with the reason); a failure of the whole batch raises ``ProviderUnavailable`` (safe to
    retry) or ``ProviderAuthError`` (pause until the credentials are fixed).
    """

    name: ClassVar[str] = "base"
    max_batch: ClassVar[int] = 1000
    # Builds bodies from ``Message.template`` and ``slots`` itself (body once per request, or pre-encoded for
    # the wire): dispatch then leaves ``Message.html`` and ``text`` empty instead of filling a copy per recipient.
    fills_itself: ClassVar[bool] = False
    # The service deduplicates a request sent again under the same key (Resend): a batch that may have reached
    # it is then retried whole and byte-identical under that key, rather than left failed.
    idempotent: ClassVar[bool] = False
    # How long after accepting a message the service's search is sure to show it: a miss is only trusted later.
    search_delay: timedelta = timedelta(0)

    def open(self) -> None:
        """Acquire connections; idempotent."""

    def close(self) -> None:
        """Release connections; idempotent."""

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def send_messages(self, messages: Sequence[Message]) -> list[SendResult]:
        """Submit ``messages``; one result per message, in order."""
        raise NotImplementedError

    def send_batch(self, messages: Sequence[Message], *, key: str) -> list[SendResult]:
        """Submit one claimed batch; ``key`` names it and is the same every time that batch is retried."""
        return self.send_messages(messages)

    def accepted(self, sent: Mapping[int, str], *, since: datetime, until: datetime) -> set[int] | None:
        """Of ``sent`` (delivery id → address), the deliveries the service's own record shows it accepted between
        ``since`` and ``until``; None when this service cannot be asked. Raises ProviderError when asking failed."""
        return None
