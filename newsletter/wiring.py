"""The one composition root: settings → engine, templates, provider, recipient source."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

import jinja2
from sqlalchemy.engine import Engine

import subscribers.models  # noqa: F401 - registers the subscriber table with the shared metadata
from newsletter.config import Settings
from newsletter.db import create_schema, make_engine
from newsletter.delivery.base import Provider
from newsletter.delivery.console import ConsoleProvider
from newsletter.delivery.file import FileProvider
from newsletter.delivery.memory import MemoryProvider
from newsletter.dispatch import Envelope
from newsletter.render import RenderContext, make_environment
from subscribers.store import Directory, Links
from subscribers.tokens import Signer


@contextmanager
def database(settings: Settings) -> Iterator[Engine]:
    """The database engine, with every table created; its connections are closed when the block ends."""
    engine = make_engine(settings.database_url)
    try:
        create_schema(engine)
        yield engine
    finally:
        engine.dispose()


def provider_for(settings: Settings, *, stream: TextIO | None = None) -> Provider:
    """The provider ``NEWSLETTER_PROVIDER`` names."""
    if settings.provider == "file":
        return FileProvider(settings.outbox_dir, domain=settings.sender_domain)
    if settings.provider == "console":
        return ConsoleProvider(stream)
    return MemoryProvider()


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
