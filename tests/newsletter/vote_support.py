"""A real sent issue for the vote tests: the fixture catalog and readers (``test_issues.seed``), built and sent
through the memory provider by the composition root, so vote links carry real voter tokens."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from newsletter import publishing, wiring
from newsletter.config import Settings
from newsletter.models import VoteRow
from newsletter.providers.memory import MemoryProvider
from newsletter.values import Message
from tests.newsletter.test_issues import WEEK, seed

VOTE_LINK = re.compile(r"https?://[^/\s]+(/vote/([^/\s]+)/([^/\s]+)/(ship|skip)/(\S+))")
DESIGN = ("iconsmith-vs-huewise", "iconsmith")  # in every cohort that asks for Design, and in "all"
WRITING = ("draftsmith-vs-lede", "draftsmith")  # not in the Design cohort's email


def send_first_issue(engine: Engine, settings: Settings) -> MemoryProvider:
    """Seed the catalog and readers, then build and send week 47's issue; the memory outbox holds every message."""
    seed(engine)
    memory = MemoryProvider()
    with wiring.build(settings, provider=memory) as wired:
        _, report = publishing.publish_week(engine, week=WEEK, renderer=wired.renderer, provider=memory,
                                            sending=wired.sending)
    assert report is not None and memory.outbox
    return memory


def message_to(memory: MemoryProvider, address: str) -> Message:
    """The one message sent to ``address``."""
    found = [m for m in memory.outbox if m.to == address]
    assert len(found) == 1, [m.to for m in memory.outbox]
    return found[0]


def vote_links(message: Message) -> dict[tuple[str, str, str], str]:
    """The message's vote link paths by (comparison, tool, choice), read from its text part."""
    return {(m[2], m[3], m[4]): m[1] for m in VOTE_LINK.finditer(message.text)}


def stored_votes(engine: Engine) -> list[tuple[Any, ...]]:
    """Every vote row as (subscriber, comparison, tool, choice, issue), in id order."""
    with Session(engine) as session:
        rows = session.exec(select(VoteRow).order_by(VoteRow.id)).all()  # type: ignore[arg-type]
        return [(r.subscriber_id, r.comparison, r.tool, r.choice, r.issue_number) for r in rows]


def settings_for(make_settings: Callable[..., Settings], database_url: str, **overrides: Any) -> Settings:
    """The tests' settings on ``database_url``."""
    return make_settings(database_url=database_url, **overrides)
