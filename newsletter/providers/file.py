"""The ``file`` provider: one ``.eml`` file per message in the outbox folder."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from newsletter.errors import ProviderUnavailable
from newsletter.providers.base import Provider
from newsletter.providers.mime import build_mime
from newsletter.values import Message, SendResult


class FileProvider(Provider):
    """Writes each message as ``<delivery id>-<address>.eml``; a resend of a delivery replaces its file."""

    name = "file"

    def __init__(self, outbox: Path, *, domain: str) -> None:
        self.outbox = outbox
        self.domain = domain

    def open(self) -> None:
        """Create the outbox folder."""
        try:
            self.outbox.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ProviderUnavailable(f"cannot create outbox {self.outbox}: {exc}") from exc

    def send_messages(self, messages: Sequence[Message]) -> list[SendResult]:
        """Write every message atomically (temp file, then rename)."""
        self.open()
        return [self._write(message) for message in messages]

    def path_for(self, message: Message) -> Path:
        """Where ``message`` lands."""
        safe = re.sub(r"[^A-Za-z0-9@._+-]", "_", message.to)
        return self.outbox / f"{message.delivery_id:08d}-{safe}.eml"

    def _write(self, message: Message) -> SendResult:
        mime = build_mime(message, domain=self.domain)
        target = self.path_for(message)
        temporary = target.with_suffix(".tmp")
        try:
            temporary.write_bytes(mime.as_bytes())
            os.replace(temporary, target)
        except OSError as exc:
            raise ProviderUnavailable(f"cannot write {target}: {exc}") from exc
        return SendResult(message.delivery_id, "submitted", provider_id=str(mime["Message-ID"]))
