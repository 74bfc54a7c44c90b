"""SMTP through smtplib: one connection per batch, STARTTLS or implicit TLS, optional login.

Messages are the MIME the core builds (``mime.build_mime``), so the raw one-click unsubscribe headers go out
exactly as written. A 5xx refusal of a recipient is a permanent rejection; a 4xx one is a temporary rejection.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from typing import Literal

from newsletter.delivery.base import Provider
from newsletter.delivery.mime import build_mime
from newsletter.errors import ProviderAuthError, ProviderUnavailable
from newsletter.values import Message, SendResult

Security = Literal["starttls", "ssl", "none"]


class SmtpProvider(Provider):
    """Hands messages to an SMTP server."""

    name = "smtp"
    max_batch = 100

    def __init__(self, *, host: str, port: int, domain: str, security: Security = "starttls",
                 username: str | None = None, password: str | None = None, timeout: float = 30.0,
                 tls_context: ssl.SSLContext | None = None) -> None:
        self.host, self.port, self.domain, self.security = host, port, domain, security
        self.username, self.password, self.timeout = username, password, timeout
        self.tls_context = tls_context or ssl.create_default_context()

    def send_messages(self, messages: Sequence[Message]) -> list[SendResult]:
        """Open a connection, send each message, close; one result per message."""
        if not messages:
            return []
        try:
            with self._connect() as connection:
                return [self._send(connection, message) for message in messages]
        except smtplib.SMTPAuthenticationError as exc:
            raise ProviderAuthError(f"smtp login refused ({exc.smtp_code}); check NEWSLETTER_SMTP_USERNAME "
                                    "and NEWSLETTER_SMTP_PASSWORD") from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise ProviderUnavailable(f"smtp {self.host}:{self.port}: {exc!r}") from exc

    def _connect(self) -> smtplib.SMTP:
        if self.security == "ssl":
            connection: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                                        context=self.tls_context)
        else:
            connection = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            connection.ehlo(self.domain)
            if self.security == "starttls":
                connection.starttls(context=self.tls_context)
                connection.ehlo(self.domain)
            if self.username:
                connection.login(self.username, self.password or "")
        except BaseException:
            connection.close()  # a failed handshake or login must not leak the socket
            raise
        return connection

    def _send(self, connection: smtplib.SMTP, message: Message) -> SendResult:
        mime = build_mime(message, domain=self.domain)
        try:
            connection.send_message(mime)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            return _refused(message, code, text)
        except smtplib.SMTPDataError as exc:
            if 500 <= exc.smtp_code < 600:
                return _refused(message, exc.smtp_code, exc.smtp_error)
            raise
        return SendResult(message.delivery_id, "submitted", provider_id=str(mime["Message-ID"]))


def _refused(message: Message, code: int, text: bytes | str) -> SendResult:
    words = text.decode(errors="replace") if isinstance(text, bytes) else text
    return SendResult(message.delivery_id, "rejected", reason=f"smtp {code}: {words}", permanent=code >= 500)
