"""Erasing a reader keeps their votes in the counts and unlinks them; their data export lists them (both databases)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from newsletter import votes
from newsletter.cli import app
from newsletter.config import Settings
from newsletter.db import session_scope
from subscribers import privacy
from tests.conftest import TEST_SECRET_KEY as SECRET
from tests.newsletter.test_cli import env  # noqa: F401 - the configured CLI working folder
from tests.newsletter.vote_support import DESIGN, WRITING, send_first_issue, stored_votes
from tests.subscribers.test_privacy import rows

NOW = datetime(2026, 11, 24, tzinfo=UTC)


def vote(engine: Engine, reader: int, tool: tuple[str, str], choice: votes.Choice) -> None:
    with session_scope(engine) as session:
        votes.record(session, subscriber_id=reader, issue_number=1, comparison=tool[0], tool=tool[1], choice=choice,
                     now=NOW)


def test_forget_unlinks_the_readers_votes_and_keeps_the_counts(engine: Engine, make_settings: Callable[..., Settings],
                                                               database_url: str) -> None:
    send_first_issue(engine, make_settings(database_url=database_url))
    ann, bob = (rows(engine)[a].id for a in ("all0@example.com", "all1@example.com"))
    assert ann is not None and bob is not None
    vote(engine, ann, DESIGN, "ship")
    vote(engine, ann, WRITING, "skip")
    vote(engine, bob, DESIGN, "skip")
    exported = privacy.export_subscriber(engine, "all0@example.com")["votes"]
    assert [(v["comparison"], v["tool"], v["choice"], v["issue"]) for v in exported] == [
        (*DESIGN, "ship", 1), (*WRITING, "skip", 1)]
    with session_scope(engine) as session:
        before = votes.tallies(session)
    privacy.forget(engine, "all0@example.com", secret=SECRET)
    with session_scope(engine) as session:
        assert votes.tallies(session) == before == {DESIGN: votes.Tally(2, 1), WRITING: votes.Tally(1, 0)}
    assert stored_votes(engine) == [(None, *DESIGN, "ship", 1), (None, *WRITING, "skip", 1), (bob, *DESIGN, "skip", 1)]


def test_cli_forget_keeps_the_votes_counted(env: object, engine: Engine) -> None:  # noqa: F811
    runner = CliRunner()
    assert runner.invoke(app, ["subscribers", "add", "ann@example.org"]).exit_code == 0
    ann = rows(engine)["ann@example.org"].id
    assert ann is not None
    vote(engine, ann, DESIGN, "ship")
    result = runner.invoke(app, ["subscribers", "forget", "ann@example.org"])
    assert result.exit_code == 0, result.output
    assert stored_votes(engine) == [(None, *DESIGN, "ship", 1)]
