"""The ``memory`` provider: keeps an outbox in memory; the fake that tests build from the real contract."""

from __future__ import annotations

from collections.abc import Sequence

from newsletter.errors import ProviderAuthError, ProviderUnavailable
from newsletter.providers.base import Provider
from newsletter.values import Message, SendResult


class MemoryProvider(Provider):
    """Appends submitted messages to ``outbox``.

    ``reject`` maps addresses to a refusal reason (per-recipient data); ``fail_with`` makes the next
    batch raise, as an unavailable service or refused credentials would.
    """

    name = "memory"

    def __init__(self, *, reject: dict[str, str] | None = None) -> None:
        self.outbox: list[Message] = []
        self.reject = dict(reject or {})
        self.fail_with: ProviderUnavailable | ProviderAuthError | None = None
        self.batches = 0

    def send_messages(self, messages: Sequence[Message]) -> list[SendResult]:
        """Record the batch, or raise ``fail_with`` once."""
        if self.fail_with is not None:
            error, self.fail_with = self.fail_with, None
            raise error
        self.batches += 1
        results = []
        for message in messages:
            reason = self.reject.get(message.to)
            if reason:
                results.append(SendResult(message.delivery_id, "rejected", reason=reason, permanent=True))
            else:
                self.outbox.append(message)
                results.append(SendResult(message.delivery_id, "submitted", provider_id=f"mem-{len(self.outbox)}"))
        return results
