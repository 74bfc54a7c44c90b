"""The one composition root: settings → engine, templates, provider, recipient source, clock, send options.

``build(settings)`` makes the process's one ``Wiring``; the CLI, the web app, the scheduler's jobs and the demo all
get their collaborators from it. Each part is made the first time it is asked for, so a command that needs no
secret key (``db status``) never asks for one; entry points name the settings they need up front with
``Settings.require``, so every missing one is reported together.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import timedelta
from functools import cached_property
from types import TracebackType
from typing import Any, TextIO

import httpx
import jinja2
from sqlalchemy.engine import Engine

import subscribers.models  # noqa: F401 - registers the subscriber table with the shared metadata
from newsletter import editors, metrics, migrate
from newsletter.clicks.links import Redirects
from newsletter.clicks.recorder import ClickRecorder
from newsletter.clock import SYSTEM, Clock
from newsletter.config import Settings
from newsletter.db import make_engine, session_scope
from newsletter.dispatch import Envelope, Sending, SendOptions
from newsletter.errors import ConfigError
from newsletter.providers.base import Provider
from newsletter.providers.console import ConsoleProvider
from newsletter.providers.file import FileProvider
from newsletter.providers.mailgun import MailgunProvider
from newsletter.providers.memory import MemoryProvider
from newsletter.providers.postmark import PostmarkProvider
from newsletter.providers.resend import ResendProvider
from newsletter.providers.sendgrid import SendGridProvider
from newsletter.providers.ses import SesProvider
from newsletter.providers.ses_bulk import SesBulkProvider
from newsletter.providers.smtp import SmtpProvider
from newsletter.publishing import Renderer
from newsletter.render import RenderContext, make_environment
from newsletter.votes import VOTE_PATH
from subscribers.store import Links, SubscriberRecipients
from subscribers.tokens import Signer


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
    if name == "ses":
        return _ses(settings, transport)
    common: dict[str, Any] = {
        "api_key": settings.require_api_key(), "transport": metrics.timed_transport(transport, name),
        "timeout": settings.request_timeout,
        "max_retries": settings.max_retries,
        "base_url": str(settings.provider_base_url) if settings.provider_base_url else None,
    }
    if settings.reconcile_delay_seconds is not None and name in ("postmark", "mailgun"):
        common["search_delay"] = timedelta(seconds=settings.reconcile_delay_seconds)
    if name == "postmark":
        return PostmarkProvider(message_stream=settings.postmark_message_stream, **common)
    if name == "sendgrid":
        return SendGridProvider(**common)
    if name == "resend":
        return ResendProvider(**common)
    if not settings.mailgun_domain:
        raise ConfigError("NEWSLETTER_MAILGUN_DOMAIN is not set: the mailgun provider sends for that domain")
    return MailgunProvider(domain=settings.mailgun_domain, **common)


def _ses(settings: Settings, transport: httpx.BaseTransport | None) -> SesProvider:
    region, key_id, secret, token = settings.require_ses()
    kind = SesBulkProvider if settings.ses_mode == "bulk" else SesProvider
    return kind(region=region, api_key=key_id, secret_access_key=secret, session_token=token,
                configuration_set=settings.ses_configuration_set, domain=settings.sender_domain,
                transport=transport, timeout=settings.request_timeout, max_retries=settings.max_retries,
                base_url=str(settings.provider_base_url) if settings.provider_base_url else None)


def _envelope(settings: Settings) -> Envelope:
    return Envelope(settings.from_address, settings.publication_name, settings.sender_domain, str(settings.public_url))


def _recipients(settings: Settings, engine: Engine, signer: Signer) -> SubscriberRecipients:
    links = Links(signer, str(settings.public_url), f"unsubscribe@{settings.sender_domain}")
    return SubscriberRecipients(engine, links)


def _renderer(settings: Settings, recipients: SubscriberRecipients, env: jinja2.Environment,
              context: RenderContext) -> Renderer:
    redirects = Redirects(str(settings.public_url), str(settings.site_url), settings.track_readers)
    return Renderer(recipients, env, context, str(settings.site_url), settings.digest_limit,
                    recap_min_votes=settings.vote_recap_min_votes, redirects=redirects)


def _context(settings: Settings) -> RenderContext:
    return RenderContext(settings.publication_name, settings.require_postal_address(),
                         vote_url=str(settings.public_url).rstrip("/") + VOTE_PATH)


def _send_options(settings: Settings) -> SendOptions:
    return SendOptions(settings.batch_size, settings.concurrency, settings.rate_limit,
                       timedelta(seconds=settings.lease_seconds), settings.local_delivery)


def note_to_stderr(line: str) -> None:
    """Write a one-line note for the operator to standard error (standard output stays the command's own)."""
    print(line, file=sys.stderr, flush=True)


class Wiring:
    """The process's collaborators, each built from settings the first time it is used; ``close()`` ends them.

    ``provider`` (tests, the demo) replaces the configured provider; ``transport`` is handed to HTTP providers;
    ``notify`` gets the one-line note said when a brand-new database's schema is created.
    """

    def __init__(self, settings: Settings, *, clock: Clock = SYSTEM, provider: Provider | None = None,
                 transport: httpx.BaseTransport | None = None, check_schema: bool = True,
                 notify: Callable[[str], None] = note_to_stderr) -> None:
        self.settings, self.clock, self._provider, self._transport = settings, clock, provider, transport
        self._check, self._notify = check_schema, notify

    @cached_property
    def engine(self) -> Engine:
        """The database engine, its schema checked to be current (unless built with ``check_schema=False``).

        A brand-new, empty database gets the schema here, with a note; an old or partial one is refused.
        """
        engine = make_engine(self.settings.database_url)
        if self._check:
            try:
                note = migrate.prepare(engine)
                if note:
                    self._notify(note)
            except BaseException:
                engine.dispose()
                raise
        return engine

    @cached_property
    def signer(self) -> Signer:
        """Signs and reads every link's token (needs ``NEWSLETTER_SECRET_KEY``)."""
        return Signer(self.settings.require_secret(), clock=self.clock)

    @cached_property
    def recipients(self) -> SubscriberRecipients:
        """The recipient source: active subscribers with their signed links."""
        return _recipients(self.settings, self.engine, self.signer)

    @cached_property
    def emails(self) -> jinja2.Environment:
        """The email templates."""
        return make_environment()

    @cached_property
    def context(self) -> RenderContext:
        """What the templates need from settings (needs ``NEWSLETTER_POSTAL_ADDRESS``)."""
        return _context(self.settings)

    @cached_property
    def envelope(self) -> Envelope:
        """Sender identity and web-version base."""
        return _envelope(self.settings)

    @cached_property
    def send_options(self) -> SendOptions:
        """The send loop's knobs from settings: batch size, concurrency, rate limit, lease, local delivery."""
        return _send_options(self.settings)

    @cached_property
    def renderer(self) -> Renderer:
        """How an issue is built and re-rendered: recipient source, templates, context, digest settings."""
        return _renderer(self.settings, self.recipients, self.emails, self.context)

    @cached_property
    def sending(self) -> Sending:
        """What every send needs besides a provider: recipient source, envelope, send options."""
        return Sending(self.recipients, self.envelope, self.send_options)

    @cached_property
    def clicks(self) -> ClickRecorder:
        """Writes the redirect's clicks in batches off the request path; ``close()`` writes what is left."""
        return ClickRecorder(self.engine, recipients=self.recipients)

    def provider(self, *, stream: TextIO | None = None) -> Provider:
        """A provider to send with: the one given at build time, else a new one as ``NEWSLETTER_PROVIDER`` says."""
        if self._provider is not None:
            return self._provider
        return provider_for(self.settings, stream=stream, transport=self._transport)

    def editor_addresses(self) -> list[str]:
        """Where review emails go: ``NEWSLETTER_EDITOR_EMAILS`` and every editor added with an address."""
        with session_scope(self.engine) as session:
            return list(dict.fromkeys([*self.settings.editor_addresses, *editors.editor_addresses(session)]))

    def close(self) -> None:
        """Write the clicks still buffered, then close the database connections, if the engine was ever made."""
        clicks = self.__dict__.pop("clicks", None)
        if clicks is not None:
            clicks.close()
        engine = self.__dict__.pop("engine", None)
        if engine is not None:
            engine.dispose()

    def __enter__(self) -> Wiring:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()


def build(settings: Settings, *, clock: Clock = SYSTEM, provider: Provider | None = None,
          transport: httpx.BaseTransport | None = None, check_schema: bool = True,
          notify: Callable[[str], None] = note_to_stderr) -> Wiring:
    """The process's one composition object for ``settings``: call it once, in the entry point."""
    return Wiring(settings, clock=clock, provider=provider, transport=transport, check_schema=check_schema,
                  notify=notify)
