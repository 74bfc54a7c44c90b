"""The one composition root: settings → engine, templates, provider, recipient source, clock, send options.

``build(settings)`` makes the process's one ``Wiring``; the CLI, the web app, the scheduler's jobs and the demo all
get their collaborators from it. Each part is made the first time it is asked for, so a command that needs no
secret key (``db status``) never asks for one, and a missing setting is reported by the part that needs it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from types import TracebackType
from typing import Any, TextIO

import httpx
import jinja2
from sqlalchemy.engine import Engine

import subscribers.models  # noqa: F401 - registers the subscriber table with the shared metadata
from newsletter import editors, metrics, migrate
from newsletter.clock import SYSTEM, Clock
from newsletter.config import Settings
from newsletter.db import make_engine, session_scope
from newsletter.desk import Renderer
from newsletter.dispatch import Envelope
from newsletter.errors import ConfigError
from newsletter.providers.base import Provider
from newsletter.providers.console import ConsoleProvider
from newsletter.providers.file import FileProvider
from newsletter.providers.mailgun import MailgunProvider
from newsletter.providers.memory import MemoryProvider
from newsletter.providers.postmark import PostmarkProvider
from newsletter.providers.resend import ResendProvider
from newsletter.providers.sendgrid import SendGridProvider
from newsletter.providers.smtp import SmtpProvider
from newsletter.render import RenderContext, make_environment
from subscribers.store import Directory, Links
from subscribers.tokens import Signer


@contextmanager
def database(settings: Settings, *, check: bool = True) -> Iterator[Engine]:
    """The database engine, its schema checked to be current; its connections are closed when the block ends."""
    engine = make_engine(settings.database_url)
    try:
        if check:
            migrate.require_current(engine)
        yield engine
    finally:
        engine.dispose()


def provider_for(settings: Settings, *, stream: TextIO | None = None,
                 transport: httpx.BaseTransport | None = None) -> Provider:
    """The provider ``NEWSLETTER_PROVIDER`` names, configured from settings."""
    name = settings.provider
    if name == "file":
        return FileProvider(settings.outbox_dir, domain=settings.sender_domain)
    if name == "console":
        return ConsoleProvider(stream)
    if name == "memory":
        return MemoryProvider()
    if name == "smtp":
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        return SmtpProvider(host=settings.smtp_host, port=settings.smtp_port, domain=settings.sender_domain,
                            security=settings.smtp_security, username=settings.smtp_username, password=password,
                            timeout=settings.request_timeout)
    common: dict[str, Any] = {
        "api_key": settings.require_api_key(), "transport": metrics.timed_transport(transport, name),
        "timeout": settings.request_timeout,
        "max_retries": settings.max_retries,
        "base_url": str(settings.provider_base_url) if settings.provider_base_url else None,
    }
    if name == "postmark":
        return PostmarkProvider(message_stream=settings.postmark_message_stream, **common)
    if name == "sendgrid":
        return SendGridProvider(**common)
    if name == "resend":
        return ResendProvider(**common)
    if not settings.mailgun_domain:
        raise ConfigError("NEWSLETTER_MAILGUN_DOMAIN is not set: the mailgun provider sends for that domain")
    return MailgunProvider(domain=settings.mailgun_domain, **common)


def directory_for(settings: Settings, engine: Engine) -> Directory:
    """Active subscribers with signed links (needs ``NEWSLETTER_SECRET_KEY``)."""
    links = Links(Signer(settings.require_secret()), str(settings.public_url), f"unsubscribe@{settings.sender_domain}")
    return Directory(engine, links)


def render_context(settings: Settings) -> RenderContext:
    """What the templates need from settings (needs ``NEWSLETTER_POSTAL_ADDRESS``)."""
    return RenderContext(settings.publication_name, settings.require_postal_address())


def environment() -> jinja2.Environment:
    """The email templates."""
    return make_environment()


def envelope_for(settings: Settings) -> Envelope:
    """Sender identity and web-version base."""
    return Envelope(settings.from_address, settings.publication_name, settings.sender_domain, str(settings.public_url))


def send_options(settings: Settings) -> dict[str, Any]:
    """The send loop's knobs from settings: batch size, concurrency, rate limit, lease."""
    return {"batch_size": settings.batch_size, "concurrency": settings.concurrency,
            "rate_limit": settings.rate_limit, "lease": timedelta(seconds=settings.lease_seconds)}


def renderer_for(settings: Settings, engine: Engine) -> Renderer:
    """What re-rendering an issue needs, from settings."""
    return Renderer(directory_for(settings, engine), environment(), render_context(settings), str(settings.site_url),
                    settings.digest_limit)


def editor_addresses(settings: Settings, engine: Engine) -> list[str]:
    """Where review emails go: ``NEWSLETTER_EDITOR_EMAILS`` and every editor added with an address."""
    with session_scope(engine) as session:
        return list(dict.fromkeys([*settings.editor_addresses, *editors.editor_addresses(session)]))


@dataclass(frozen=True, slots=True)
class SendOptions:
    """The send loop's knobs: messages per provider call, calls in flight, messages per second, claim lease."""

    batch_size: int = 100
    concurrency: int = 1
    rate_limit: float | None = None
    lease: timedelta = timedelta(minutes=10)

    @classmethod
    def of(cls, settings: Settings) -> SendOptions:
        """The knobs ``settings`` set."""
        return cls(settings.batch_size, settings.concurrency, settings.rate_limit,
                   timedelta(seconds=settings.lease_seconds))


class Wiring:
    """The process's collaborators, each built from settings the first time it is used; ``close()`` ends them.

    ``provider`` (tests, the demo) replaces the configured provider; ``transport`` is handed to HTTP providers.
    """

    def __init__(self, settings: Settings, *, clock: Clock = SYSTEM, provider: Provider | None = None,
                 transport: httpx.BaseTransport | None = None, check_schema: bool = True) -> None:
        self.settings, self.clock, self._provider, self._transport = settings, clock, provider, transport
        self._check = check_schema

    @cached_property
    def engine(self) -> Engine:
        """The database engine, its schema checked to be current (unless built with ``check_schema=False``)."""
        engine = make_engine(self.settings.database_url)
        if self._check:
            try:
                migrate.require_current(engine)
            except BaseException:
                engine.dispose()
                raise
        return engine

    @cached_property
    def signer(self) -> Signer:
        """Signs and reads every link's token (needs ``NEWSLETTER_SECRET_KEY``)."""
        return Signer(self.settings.require_secret())

    @cached_property
    def recipients(self) -> Directory:
        """The recipient source: active subscribers with their signed links."""
        links = Links(self.signer, str(self.settings.public_url), f"unsubscribe@{self.settings.sender_domain}")
        return Directory(self.engine, links)

    @cached_property
    def emails(self) -> jinja2.Environment:
        """The email templates."""
        return make_environment()

    @cached_property
    def context(self) -> RenderContext:
        """What the templates need from settings (needs ``NEWSLETTER_POSTAL_ADDRESS``)."""
        return RenderContext(self.settings.publication_name, self.settings.require_postal_address())

    @cached_property
    def envelope(self) -> Envelope:
        """Sender identity and web-version base."""
        settings = self.settings
        return Envelope(settings.from_address, settings.publication_name, settings.sender_domain,
                        str(settings.public_url))

    @cached_property
    def send_options(self) -> SendOptions:
        """The send loop's knobs from settings."""
        return SendOptions.of(self.settings)

    @cached_property
    def renderer(self) -> Renderer:
        """What re-rendering an issue needs."""
        return Renderer(self.recipients, self.emails, self.context, str(self.settings.site_url),
                        self.settings.digest_limit)

    def provider(self, *, stream: TextIO | None = None) -> Provider:
        """A provider to send with: the one given at build time, else a new one as ``NEWSLETTER_PROVIDER`` says."""
        if self._provider is not None:
            return self._provider
        return provider_for(self.settings, stream=stream, transport=self._transport)

    def editor_addresses(self) -> list[str]:
        """Where review emails go: ``NEWSLETTER_EDITOR_EMAILS`` and every editor added with an address."""
        return editor_addresses(self.settings, self.engine)

    def close(self) -> None:
        """Close the database connections, if the engine was ever made."""
        engine = self.__dict__.pop("engine", None)
        if engine is not None:
            engine.dispose()

    def __enter__(self) -> Wiring:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()


def build(settings: Settings, *, clock: Clock = SYSTEM, provider: Provider | None = None,
          transport: httpx.BaseTransport | None = None, check_schema: bool = True) -> Wiring:
    """The process's one composition object for ``settings``: call it once, in the entry point."""
    return Wiring(settings, clock=clock, provider=provider, transport=transport, check_schema=check_schema)
