"""``newsletter issue stats N`` and the unsubscribes it counts after an issue (both databases)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from newsletter import votes
from newsletter.cli import app
from newsletter.clicks.links import find_link
from newsletter.clicks.recorder import Click, ClickRecorder
from newsletter.db import session_scope
from newsletter.models import DeliveryRow, IssueRow
from newsletter.statuses import DeliveryStatus, IssueStatus, SubscriberStatus
from subscribers.engagement import engagement
from subscribers.suppression import suppress
from tests.newsletter.clicking import directory_for, sent
from tests.newsletter.test_cli import env, run

__all__ = ["env"]  # the CLI tests' configured folder, as a fixture here too
runner = CliRunner()


def click(engine: Engine, link: int, reader: int | None, times: int = 1) -> None:
    recorder = ClickRecorder(engine, recipients=directory_for(engine), background=False)
    with session_scope(engine) as session:
        found = find_link(session, 1, link)
    assert found is not None
    for _ in range(times):
        recorder.record(Click(found.issue_id, found.id, reader, datetime.now(UTC)))
    recorder.close()


def reader(engine: Engine, address: str) -> int:
    found = directory_for(engine).find(address)
    assert found is not None
    return found[0].id


def leave(engine: Engine, subscriber: int, moment: datetime) -> None:
    with session_scope(engine) as session:
        suppress(session, [subscriber], SubscriberStatus.UNSUBSCRIBED, channel="link", moment=moment,
                 reason="test")


def test_issue_stats_prints_clicks_per_comparison_and_the_readers_figures(env: Path, engine: Engine) -> None:
    sent(engine, track=True)
    click(engine, 1, reader(engine, "all0@example.com"), times=2)
    click(engine, 1, reader(engine, "design0@example.com"))
    click(engine, 2, None)
    leave(engine, reader(engine, "all3@example.com"), datetime.now(UTC))
    output = run("issue", "stats", "1")
    lines = [" ".join(line.replace("│", " ").split()) for line in output.splitlines()]
    assert "Iconsmith vs Huewise 3 2" in lines and "Draftsmith vs Lede 1 0" in lines
    assert "Readers who clicked 2" in lines and "Submitted 10" in lines
    assert "Click-through 20.0 % (readers who clicked / submitted)" in lines
    assert "Unsubscribed after it 1" in lines


def test_issue_stats_of_an_untracked_issue_has_no_unique_column(env: Path, engine: Engine) -> None:
    sent(engine)
    click(engine, 2, None, times=3)
    output = run("issue", "stats", "1")
    assert "Unique readers" not in output and "not tracked" in output
    assert "Click-through 30.0 % (clicks / submitted)" in [" ".join(line.replace("│", " ").split())
                                                         for line in output.splitlines()]


def test_issue_stats_of_an_unknown_issue_is_a_clear_error(env: Path, engine: Engine) -> None:
    sent(engine)
    result = runner.invoke(app, ["issue", "stats", "7"])
    assert result.exit_code == 1 and "there is no issue 7" in result.output and "Traceback" not in result.output


def test_unsubscribes_count_after_the_readers_copy_and_before_the_next_issue(engine: Engine) -> None:
    sent(engine)
    with session_scope(engine) as session:
        submitted = session.get(DeliveryRow, 1)
        assert submitted is not None and submitted.submitted_at is not None
        at = submitted.submitted_at
        later = IssueRow(number=2, week="2026-W48", subject="Next", status=IssueStatus.SENDING, created_at=at)
        session.add(later)
        session.flush()
        assert later.id is not None
        session.add(DeliveryRow(issue_id=later.id, subscriber_id=999, cohort_key="all",
                                status=DeliveryStatus.SUBMITTED, submitted_at=at + timedelta(minutes=30)))
    leave(engine, reader(engine, "all0@example.com"), at - timedelta(minutes=1))  # before their copy went
    leave(engine, reader(engine, "all1@example.com"), at + timedelta(minutes=10))  # after it: counted
    leave(engine, reader(engine, "all2@example.com"), at + timedelta(hours=1))  # after the next issue started
    assert engagement(engine, 1).unsubscribed == 1


def test_issue_stats_prints_the_votes_cast_from_the_issue_per_tool(env: Path, engine: Engine) -> None:
    sent(engine)
    with session_scope(engine) as session:
        for subscriber, choice in ((reader(engine, "all0@example.com"), "ship"),
                                   (reader(engine, "all1@example.com"), "skip"),
                                   (reader(engine, "design0@example.com"), "ship")):
            votes.record(session, subscriber_id=subscriber, issue_number=1, comparison="iconsmith-vs-huewise",
                         tool="iconsmith", choice=choice, now=datetime.now(UTC))
        votes.record(session, subscriber_id=reader(engine, "all2@example.com"), issue_number=2,
                     comparison="iconsmith-vs-huewise", tool="huewise", choice="skip", now=datetime.now(UTC))
    lines = [" ".join(line.replace("│", " ").split()) for line in run("issue", "stats", "1").splitlines()]
    assert "Iconsmith vs Huewise Iconsmith 3 2 67 %" in lines, lines
    assert not any("Huewise 1" in line for line in lines)  # cast from another issue's link: counted there


def test_issue_stats_says_when_nobody_voted_yet(env: Path, engine: Engine) -> None:
    sent(engine)
    lines = [" ".join(line.replace("│", " ").split()) for line in run("issue", "stats", "1").splitlines()]
    assert "(no votes from this issue yet) 0 0" in lines, lines
