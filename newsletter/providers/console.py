"""The ``console`` provider: prints one line per message; for trying things out."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from newsletter.providers.base import Provider
from newsletter.providers.headers import one_line
from newsletter.values import Message, SendResult


class ConsoleProvider(Provider):
    """Writes ``to | subject | sizes`` per message to a stream (stdout by default)."""

    name = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def send_messages(self, messages: Sequence[Message]) -> list[SendResult]:
        """Print each message's summary; every message counts as submitted."""
        for message in messages:
            self.stream.write(f"{message.to} | {one_line(message.subject)} | html {len(message.html)} B, "
                              f"text {len(message.text)} B\n")
        self.stream.flush()
        return [SendResult(m.delivery_id, "submitted", provider_id=f"console-{m.delivery_id}") for m in messages]
