"""Shared by the click tests: the seeded week built with its links routed, sent to a memory outbox, and the
submission times moved back as if the send were long over (clicks right after a submission are scanners')."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from newsletter import publishing
from newsletter.clicks.links import Redirects
from newsletter.db import session_scope
from newsletter.dispatch import Envelope, Sending, send_issue
from newsletter.models import ClickRow, DeliveryRow
from newsletter.providers.memory import MemoryProvider
from newsletter.render import make_environment
from subscribers import store
from subscribers.tokens import Signer
from tests.conftest import TEST_SECRET_KEY
from tests.newsletter.test_issues import CONTEXT, WEEK, seed

APP = "https://app.example.com"
SITE = "https://site.example.com/compare/"
ENVELOPE = Envelope("Verdicts <v@news.example.com>", "Weekly AI Tool Verdicts", "news.example.com", APP)
REDIRECT = re.compile(r"(https?://[^/\s\"]+)/r/(\d+)/(\d+)(?:\?r=([\w.-]*))?")


def directory_for(engine: Engine, public_url: str = APP) -> store.SubscriberRecipients:
    """The seeded readers, their links signed with the app's test secret (so the app reads their tokens)."""
    return store.SubscriberRecipients(engine, store.Links(Signer(TEST_SECRET_KEY), public_url,
                                                          "unsubscribe@news.example.com"))


def renderer(directory: store.SubscriberRecipients, *, track: bool = False, public_url: str = APP,
             site_url: str = SITE) -> publishing.Renderer:
    """Building and re-rendering with the emails' site links routed through ``public_url``'s redirect."""
    return publishing.Renderer(directory, make_environment(), CONTEXT, site_url,
                               redirects=Redirects(public_url, site_url, track))


def built(engine: Engine, *, track: bool = False, public_url: str = APP,
          site_url: str = SITE) -> store.SubscriberRecipients:
    """Seed the catalog and readers, build issue 1 with routed links; the recipient source."""
    seed(engine)
    directory = directory_for(engine, public_url)
    publishing.build_issue(engine, week=WEEK, renderer=renderer(directory, track=track, public_url=public_url,
                                                                site_url=site_url))
    return directory


def sent(engine: Engine, *, track: bool = False, public_url: str = APP, site_url: str = SITE,
         ago: float = 3600) -> MemoryProvider:
    """Issue 1 built and sent to every seeded reader, its submissions ``ago`` seconds in the past."""
    directory = built(engine, track=track, public_url=public_url, site_url=site_url)
    outbox = MemoryProvider()
    envelope = Envelope(ENVELOPE.sender, ENVELOPE.publication, ENVELOPE.domain, public_url)
    send_issue(engine, 1, provider=outbox, sending=Sending(directory, envelope))
    backdate(engine, ago)
    return outbox


def backdate(engine: Engine, seconds: float) -> None:
    """Move every submission ``seconds`` into the past."""
    with session_scope(engine) as session:
        for row in session.exec(select(DeliveryRow).where(col(DeliveryRow.submitted_at).is_not(None))):
            assert row.submitted_at is not None
            row.submitted_at = row.submitted_at - timedelta(seconds=seconds)


def clicks(engine: Engine) -> list[ClickRow]:
    """Every counted click, in order."""
    with session_scope(engine) as session:
        return list(session.exec(select(ClickRow).order_by(col(ClickRow.id))))
