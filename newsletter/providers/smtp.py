"""SMTP through smtplib: one connection per batch, STARTTLS or implicit TLS, optional login.

Messages are the MIME the core builds (``mime.build_mime``), so the raw one-click unsubscribe headers go out
exactly as written. A 5xx refusal of a recipient is a permanent rejection; a 4xx one is a temporary rejection.

Each message is its own SMTP transaction, settled when the server answers it. When the server hangs up or
answers 421 (or another 4xx outside RCPT) part-way through a batch, ``ProviderUnavailable`` carries the results
of the messages it had answered, so only the rest is sent again. If the connection dies after a message's
final dot and before the answer, the server may have taken it: that delivery is reported ``unknown``, never
resent blindly.

Domains always travel in IDNA form. A non-ASCII local part needs SMTPUTF8: it is used only when the server
offers it; otherwise that message is rejected with the reason and the rest of the batch goes on.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from collections.abc import Sequence
from email import policy
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Literal

from newsletter.errors import ProviderAuthError, ProviderUnavailable
from newsletter.providers.base import Provider
from newsletter.providers.headers import ascii_domain
from newsletter.providers.mime import build_mime
from newsletter.values import Message, SendResult

Security = Literal["starttls", "ssl", "none"]
_LEADING_DOT = re.compile(rb"(?m)^\.")
_UTF8 = policy.SMTPUTF8.clone(refold_source="none")  # mime's policy, with headers left in raw UTF-8


class _Stop(Exception):
    """The server ended the batch at this message: not taken (``unknown`` False) or perhaps taken (True)."""

    def __init__(self, reason: str, *, unknown: bool = False) -> None:
        super().__init__(reason)
        self.unknown = unknown


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
        """Open a connection, send each message, close; one result per message.

        Raises ``ProviderUnavailable`` with ``settled`` (and ``unknown``) set when the server fails part-way.
        """
        if not messages:
            return []
        connection = self._open()
        results: list[SendResult] = []
        try:
            for message in messages:
                results.append(self._send(connection, message))
        except _Stop as stop:
            unknown = (messages[len(results)].delivery_id,) if stop.unknown else ()
            raise ProviderUnavailable(f"smtp {self.host}:{self.port}: {stop} (after {len(results)} of "
                                      f"{len(messages)} messages)", settled=results, unknown=unknown) from stop
        finally:
            _hang_up(connection)
        return results

    def verify(self) -> None:
        """Connect, secure and log in as a send would, then hang up: ProviderAuthError / ProviderUnavailable if not."""
        _hang_up(self._open())

    def _open(self) -> smtplib.SMTP:
        try:
            return self._connect()
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
        """One transaction; a refusal of this message is a result, a failure of the session raises _Stop."""
        mime = build_mime(message, domain=self.domain)
        sender, recipient = ascii_domain(parseaddr(message.sender)[1]), ascii_domain(message.to)
        international = not (sender + recipient).isascii()
        if international and not connection.has_extn("smtputf8"):
            # The reason names no address: reasons are counted per kind in a send's summary.
            return SendResult(message.delivery_id, "rejected", reason=f"smtp: a non-ASCII address needs SMTPUTF8, "
                              f"which {self.host} does not offer")
        try:
            refusal = _transaction(connection, sender, recipient, _wire(mime, international), international)
        except (smtplib.SMTPException, OSError) as exc:
            raise _Stop(f"connection lost before the message was complete: {exc!r}") from exc
        if refusal is not None:
            return _refused(message, *refusal)
        return SendResult(message.delivery_id, "submitted", provider_id=str(mime["Message-ID"]))


def _transaction(connection: smtplib.SMTP, sender: str, recipient: str, data: bytes,
                 international: bool) -> tuple[int, bytes] | None:
    """MAIL, RCPT, DATA for one message: None when it was accepted, (code, text) when it was refused.

    Written out instead of ``sendmail`` to know whether a lost connection came before or after the final dot.
    """
    options = ["SMTPUTF8", "BODY=8BITMIME"] if international else []
    code, text = connection.mail(sender, options)
    if code != 250:  # a refused sender is refused for the whole batch, never this reader's fault
        raise _Stop(f"the server refused the sender: {code} {text.decode(errors='replace')}")
    code, text = connection.rcpt(recipient)
    _session_ok(code, text, refusable=True)
    if code not in (250, 251):
        return _reset(connection, code, text)
    code, text = connection.docmd("DATA")
    _session_ok(code, text, refusable=False)
    if code != 354:
        return _reset(connection, code, text)
    connection.send(_LEADING_DOT.sub(b"..", data).rstrip(b"\r\n") + b"\r\n.\r\n")
    try:
        code, text = connection.getreply()
    except (smtplib.SMTPException, OSError) as exc:
        raise _Stop(f"no answer after the message was sent ({exc!r}); the server may have accepted it",
                    unknown=True) from exc
    _session_ok(code, text, refusable=False)
    return None if code == 250 else (code, text)


def _session_ok(code: int, text: bytes, *, refusable: bool) -> None:
    """A 421 (or a 4xx anywhere but RCPT) means: not now; the batch stops and its rest is sent later."""
    if code == 421 or (400 <= code < 500 and not refusable) or code < 200:
        raise _Stop(f"the server answered {code} {text.decode(errors='replace')}")


def _reset(connection: smtplib.SMTP, code: int, text: bytes) -> tuple[int, bytes]:
    """End a refused transaction so the next message starts clean."""
    connection.rset()
    return code, text


def _wire(mime: EmailMessage, international: bool) -> bytes:
    """The message as sent: headers in raw UTF-8 only under SMTPUTF8, CRLF line ends throughout."""
    return mime.as_bytes(policy=_UTF8) if international else mime.as_bytes()


def _hang_up(connection: smtplib.SMTP) -> None:
    """QUIT politely; a server that already hung up changes nothing (results are what it answered)."""
    try:
        connection.quit()
    except (smtplib.SMTPException, OSError):
        connection.close()


def _refused(message: Message, code: int, text: bytes | str) -> SendResult:
    words = text.decode(errors="replace") if isinstance(text, bytes) else text
    return SendResult(message.delivery_id, "rejected", reason=f"smtp {code}: {words}", permanent=code >= 500)
