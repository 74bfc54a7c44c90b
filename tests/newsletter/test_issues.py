"""Building the week's issue: once per week, rendered per cohort, deliveries queued (both databases)."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from newsletter import deliveries, issues, publishing
from newsletter.catalog.importer import import_files
from newsletter.checks import GMAIL_CLIP
from newsletter.db import session_scope
from newsletter.errors import IssueNotFound, IssueStateError, IssueTooLarge
from newsletter.models import DeliveryRow, IssueCohortRow
from newsletter.render import RenderContext, make_environment
from newsletter.values import Week
from subscribers import store
from subscribers.tokens import Signer
from tests.catalogs import many, write
from tests.conftest import FIXTURE_PAGES

WEEK = Week(2026, 47)
LINKS = store.Links(Signer("a-very-secret-test-key"), "https://app.example.com", "unsubscribe@news.example.com")
CONTEXT = RenderContext("Weekly AI Tool Verdicts", "1 Test Street")


def seed(engine: Engine) -> store.SubscriberRecipients:
    """Two comparisons this week (Design; Writing), and readers in five cohorts."""
    import_files(engine, sorted(FIXTURE_PAGES.glob("*.txt")), published=date(2026, 11, 18))
    with session_scope(engine) as session:
        store.add_active(session, [f"all{i}@example.com" for i in range(5)])
        store.add_active(session, [f"design{i}@example.com" for i in range(3)], categories=["Design"])
        store.add_active(session, ["writing@example.com"], categories=["Writing"])
        store.add_active(session, ["free@example.com"], free_only=True)
        store.add_active(session, ["audio@example.com"], categories=["Audio"])
    return store.SubscriberRecipients(engine, LINKS)


def build(engine: Engine, directory: store.SubscriberRecipients, week: Week = WEEK) -> publishing.BuildOutcome:
    renderer = publishing.Renderer(directory, make_environment(), CONTEXT, "https://site.example.com/compare/")
    return publishing.build_issue(engine, week=week, renderer=renderer)


def make_due(engine: Engine, number: int = 1) -> None:
    """Give the issue's queued deliveries a due time long past, as starting its send does (for tests that claim
    batches directly)."""
    with session_scope(engine) as session:
        found = issues.get_issue(session, number).id
        assert found is not None
        deliveries.schedule(session, found, start=datetime(2000, 1, 1, tzinfo=UTC))


def build_due(engine: Engine, directory: store.SubscriberRecipients) -> publishing.BuildOutcome:
    """Build the issue with every delivery due (see :func:`make_due`)."""
    outcome = build(engine, directory)
    make_due(engine)
    return outcome


def test_build_renders_each_cohort_once_and_queues_its_readers(engine: Engine) -> None:
    directory = seed(engine)
    outcome = build(engine, directory)
    assert outcome.created and outcome.number == 1
    assert outcome.subject == "Iconsmith vs Huewise, and 1 more verdict"
    assert dict(outcome.cohorts) == {"all": 5, "Design": 3, "Writing": 1, "free:all": 1}
    assert outcome.empty_cohorts == ("Audio",)
    assert outcome.queued == 10
    with Session(engine) as session:
        keys = sorted(row.cohort_key for row in session.exec(select(IssueCohortRow)))
        snapshot = {r.cohort_key: r for r in session.exec(select(IssueCohortRow))}
        cohorts = sorted({d.cohort_key for d in session.exec(select(DeliveryRow))})
    assert keys == ["Design", "Writing", "all", "free:all"]
    assert cohorts == ["Design", "Writing", "all", "free:all"]
    assert snapshot["Design"].comparison_count == 1 and snapshot["all"].comparison_count == 2
    assert "Lede" not in snapshot["Design"].html and "Lede" in snapshot["all"].html
    assert "Draftsmith" not in snapshot["free:all"].html  # neither Writing tool is free


def test_building_twice_gives_one_issue(engine: Engine) -> None:
    directory = seed(engine)
    first = build(engine, directory)
    second = build(engine, directory)
    assert (second.number, second.created) == (first.number, False)
    with Session(engine) as session:
        assert len(issues.list_issues(session)) == 1
        assert len(list(session.exec(select(DeliveryRow)))) == 10


def test_quiet_week_builds_nothing(engine: Engine) -> None:
    outcome = build(engine, seed(engine), Week(2026, 40))
    assert outcome.quiet and not outcome.created
    with Session(engine) as session:
        assert issues.list_issues(session) == []


def test_issue_numbers_follow_the_weeks(engine: Engine) -> None:
    directory = seed(engine)
    import_files(engine, [FIXTURE_PAGES / "draftsmith-vs-lede.txt"], published=date(2026, 11, 25))
    assert build(engine, directory).number == 1
    assert build(engine, directory, Week(2026, 48)).number == 2
    with Session(engine) as session:
        assert [s.number for s in issues.list_issues(session)] == [2, 1]


def test_lifecycle_refuses_impossible_moves(engine: Engine) -> None:
    build(engine, seed(engine))
    with session_scope(engine) as session:
        issue = issues.get_issue(session, 1)
        issues.transition(issue, "cancelled")
        with pytest.raises(IssueStateError, match="issue 1 is cancelled; it cannot become sending"):
            issues.transition(issue, "sending")
        with pytest.raises(IssueNotFound, match="there is no issue 9"):
            issues.get_issue(session, 9)


def test_preview_as_a_subscriber_and_as_anyone(engine: Engine) -> None:
    directory = seed(engine)
    build(engine, directory)
    from newsletter.dispatch import Envelope

    envelope = Envelope("V <v@news.example.com>", "Weekly AI Tool Verdicts", "news.example.com", "https://app.example.com")
    snapshot, html, text = publishing.preview(engine, 1, envelope=envelope)
    assert snapshot.cohort_key == "all" and "https://app.example.com/archive/1" in html
    assert "%%{" not in html and "%%{" not in text
    snapshot, html, _ = publishing.preview(engine, 1, envelope=envelope, recipients=directory,
                                              address="design0@example.com")
    assert snapshot.cohort_key == "Design"
    recipient = directory.find("design0@example.com")
    assert recipient is not None and recipient[0].unsubscribe_url in html
    with pytest.raises(Exception, match="gets nothing from issue 1"):
        publishing.preview(engine, 1, envelope=envelope, recipients=directory, address="audio@example.com")


@pytest.mark.parametrize("first", ["paused", "sending"])
def test_a_pause_and_a_send_start_racing_cannot_both_win(engine: Engine, first: str) -> None:
    """Two sessions read the approved issue; each moves it on. The second to write must be refused."""
    build(engine, seed(engine))
    with session_scope(engine) as session:
        issues.transition(issues.get_issue(session, 1), "approved")
    read, written = threading.Barrier(2, timeout=30), threading.Event()
    outcome: dict[str, str] = {}

    def move(to: str) -> None:
        try:
            with session_scope(engine) as session:
                issue = issues.get_issue(session, 1)
                read.wait()  # both have seen "approved"
                if to != first:
                    written.wait(30)
                issues.transition(issue, to)
            outcome[to] = "won"
        except IssueStateError as exc:
            outcome[to] = str(exc)
        finally:
            if to == first:
                written.set()

    threads = [threading.Thread(target=move, args=(to,)) for to in ("paused", "sending")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    second = "sending" if first == "paused" else "paused"
    assert outcome == {first: "won", second: f"issue 1 is now {first}; it cannot become {second}"}
    with Session(engine) as session:
        assert issues.get_issue(session, 1).status == first


def test_eight_concurrent_transitions_leave_one_winner(engine: Engine) -> None:
    """Every later UPDATE waits for the first transaction (a row lock, SQLite's one writer), then finds the
    status changed and is refused."""
    build(engine, seed(engine))
    with session_scope(engine) as session:
        issues.transition(issues.get_issue(session, 1), "approved")
    start = threading.Barrier(8, timeout=30)
    wins: list[str] = []
    refusals: list[str] = []

    def move(to: str) -> None:
        with Session(engine) as session:
            issue = issues.get_issue(session, 1)
            start.wait()
            try:
                issues.transition(issue, to)
                session.commit()
                wins.append(to)
            except IssueStateError as exc:
                session.rollback()
                refusals.append(str(exc))

    threads = [threading.Thread(target=move, args=(to,)) for to in ("paused", "sending", "cancelled", "draft") * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(wins) == 1 and len(refusals) == 7, (wins, refusals)
    with Session(engine) as session:
        assert issues.get_issue(session, 1).status == wins[0]


def test_an_issue_gmail_would_clip_is_refused_with_what_to_cut_and_nothing_stored(engine: Engine,
                                                                                   tmp_path: Path) -> None:
    import_files(engine, [write(tmp_path / "week.json", many(20, date(2026, 11, 18)))], published=date(2026, 11, 18))
    directory = seed(engine)

    def build_with(limit: int) -> publishing.BuildOutcome:
        renderer = publishing.Renderer(directory, make_environment(), CONTEXT, "https://site.example.com/compare/",
                                       limit)
        return publishing.build_issue(engine, week=WEEK, renderer=renderer)

    with pytest.raises(IssueTooLarge, match=r"KB of HTML \(cohort all\): Gmail clips anything over 102 KB; "
                                            r"drop comparisons on the desk or lower NEWSLETTER_DIGEST_LIMIT"):
        build_with(20)
    with Session(engine) as session:
        assert issues.list_issues(session) == []
        assert list(session.exec(select(IssueCohortRow))) == [] and list(session.exec(select(DeliveryRow))) == []
    outcome = build_with(8)  # the default limit fits, well under the size at which the desk warns
    with Session(engine) as session:
        html = issues.rendered_emails(session, issues.get_issue(session, outcome.number or 0))["all"].html
    assert outcome.created and len(html.encode()) < GMAIL_CLIP * 0.85, len(html.encode())
