"""Clicks in the core: the link table and routed emails, the scanner rule, the batched writer, the figures and the
chart (both databases)."""

from __future__ import annotations

import re
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import select

from newsletter import desk, issues
from newsletter.clicks import rules
from newsletter.clicks.chart import clicks_chart
from newsletter.clicks.links import Redirects, _trimmed, find_link
from newsletter.clicks.recorder import Click, ClickRecorder
from newsletter.clicks.stats import Line, click_figures
from newsletter.db import make_engine, session_scope
from newsletter.editing import Edits
from newsletter.models import IssueLinkRow
from subscribers import privacy
from subscribers.engagement import engagement
from subscribers.tokens import Signer
from tests.conftest import TEST_SECRET_KEY
from tests.newsletter.clicking import APP, REDIRECT, SITE, built, clicks, directory_for, renderer, sent

COMPARISONS = {"Iconsmith vs Huewise": SITE + "iconsmith-vs-huewise", "Draftsmith vs Lede": SITE + "draftsmith-vs-lede"}


def links(engine: Engine) -> dict[int, IssueLinkRow]:
    with session_scope(engine) as session:
        return {row.link: row for row in session.exec(select(IssueLinkRow))}


def targets(engine: Engine, text: str) -> set[str]:
    """Where every redirect link in ``text`` leads, by the issue's link table."""
    with session_scope(engine) as session:
        found = {find_link(session, int(m[2]), int(m[3])) for m in REDIRECT.finditer(text)}
    assert None not in found
    return {link.target for link in found if link is not None}


def test_every_site_link_of_every_cohort_goes_through_the_redirect(engine: Engine) -> None:
    built(engine)
    table = links(engine)
    assert {row.label: row.target for row in table.values()} == COMPARISONS
    assert {row.comparison for row in table.values()} == {"iconsmith-vs-huewise", "draftsmith-vs-lede"}
    with session_scope(engine) as session:
        emails = issues.rendered_emails(session, issues.get_issue(session, 1))
    assert set(emails) == {"all", "Design", "Writing", "free:all"}
    for email in emails.values():
        for body in (email.html, email.text):
            assert SITE not in body  # no direct link to the site is left
            assert "%%{unsubscribe_url}%%" in body and "%%{web_url}%%" in body  # our own links stay as they are
            assert targets(engine, body) <= set(COMPARISONS.values())
            assert "?r=" not in body  # untracked: one body for the whole cohort
    assert targets(engine, emails["all"].html) == targets(engine, emails["all"].text) == set(COMPARISONS.values())


def test_the_sent_messages_links_resolve_to_their_comparisons(engine: Engine) -> None:
    outbox = sent(engine)
    design = next(m for m in outbox.outbox if m.to == "design0@example.com")
    hrefs = [unescape(h) for h in re.findall(r'href="([^"]+)"', design.html)]
    routed = [h for h in hrefs if "/r/" in h]
    assert routed and all(h.startswith(f"{APP}/r/1/") for h in routed)
    assert not [h for h in hrefs if h.startswith(SITE)]
    assert targets(engine, design.html) == {COMPARISONS["Iconsmith vs Huewise"]}  # Design gets one comparison


def test_tracked_links_carry_the_readers_own_token(engine: Engine) -> None:
    outbox = sent(engine, track=True)
    signer = Signer(TEST_SECRET_KEY)
    directory = directory_for(engine)
    for message in outbox.outbox:
        tokens = {m[4] for m in REDIRECT.finditer(message.text)} | {m[4] for m in REDIRECT.finditer(message.html)}
        assert len(tokens) == 1, tokens  # one substitution per recipient, the same in every link
        subscriber, number = signer.read_voter(tokens.pop())
        assert number == 1 and directory.by_ids([subscriber])[subscriber].address == message.to
    assert all(row.tracked for row in links(engine).values())


def test_a_re_render_keeps_each_targets_link_number(engine: Engine) -> None:
    directory = built(engine)
    before = {row.target: row.link for row in links(engine).values()}
    wired = renderer(directory)
    desk.edit(engine, 1, lambda edits, shown: replace(edits, note="A note"), renderer=wired)
    slug = "draftsmith-vs-lede"
    desk.edit(engine, 1, lambda edits, shown: replace(edits, arrangement=edits.arrangement.moved(shown, slug, "drop")),
              renderer=wired)
    with session_scope(engine) as session:
        email = issues.rendered_emails(session, issues.get_issue(session, 1))["all"]
    assert targets(engine, email.html) == {COMPARISONS["Iconsmith vs Huewise"]}
    desk.edit(engine, 1, lambda edits, shown: Edits(), renderer=wired)
    assert {row.target: row.link for row in links(engine).values()} == before  # nothing renumbered or removed


def test_only_links_to_the_sites_host_are_routed_and_never_our_own() -> None:
    redirects = Redirects("https://site.example.com/newsletter", SITE)
    assert redirects.leaves_for_site("https://site.example.com/compare/a-vs-b")
    assert redirects.leaves_for_site("https://SITE.example.com/")
    assert not redirects.leaves_for_site("https://site.example.com/newsletter/unsubscribe/abc")
    assert not redirects.leaves_for_site("https://elsewhere.example.com/compare/a-vs-b")
    assert not redirects.leaves_for_site("mailto:someone@site.example.com")
    assert not redirects.leaves_for_site("https://site.example.com/" + "x" * 2000)  # longer than the table holds
    assert Redirects(APP, SITE, True).url(3, 2) == f"{APP}/r/3/2?r=%%{{voter}}%%"


@pytest.mark.parametrize("agent", [
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
    "Mozilla/5.0 (compatible; BingPreview/1.0b)", "Microsoft Office Existence Discovery", "Proofpoint URL Defense",
    "Mimecast-URL-Protect", "Barracuda Sentinel", "", None])
def test_scanner_agents_are_recognised(agent: str | None) -> None:
    assert rules.is_scanner(agent)


def test_a_browser_is_not_a_scanner() -> None:
    assert not rules.is_scanner("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                                "Chrome/131.0.0.0 Safari/537.36")


def test_the_early_rule_for_a_reader_and_for_an_issue() -> None:
    sent_at = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
    assert rules.early_for_reader(sent_at + timedelta(seconds=9), sent_at)
    assert not rules.early_for_reader(sent_at + rules.EARLY, sent_at)
    batches = [sent_at, sent_at + timedelta(minutes=5)]
    assert rules.early_for_issue(sent_at + timedelta(seconds=3), batches)
    assert not rules.early_for_issue(sent_at + timedelta(minutes=1), batches)
    assert rules.early_for_issue(sent_at + timedelta(minutes=5, seconds=1), batches)
    assert rules.early_for_issue(sent_at - timedelta(seconds=1), batches)  # before anyone had it: an editor's
    assert rules.early_for_issue(sent_at, [])


def record(engine: Engine, reader: int | None, link: int = 1, *, at: datetime | None = None) -> ClickRecorder:
    """A recorder with one click of ``link`` by ``reader`` buffered (not yet written)."""
    recorder = ClickRecorder(engine, recipients=directory_for(engine), background=False)
    add(engine, recorder, reader, link, at=at)
    return recorder


def add(engine: Engine, recorder: ClickRecorder, reader: int | None, link: int = 1, *,
        at: datetime | None = None) -> None:
    with session_scope(engine) as session:
        found = find_link(session, 1, link)
    assert found is not None
    recorder.record(Click(found.issue_id, found.id, reader, at or datetime.now(UTC)))


def reader_of(engine: Engine, address: str) -> int:
    found = directory_for(engine).find(address)
    assert found is not None
    return found[0].id


def test_clicks_within_seconds_of_the_submission_are_not_counted(engine: Engine) -> None:
    sent(engine, ago=0)
    design = reader_of(engine, "design0@example.com")
    recorder = record(engine, None)
    add(engine, recorder, design)
    assert recorder.flush() == 0 and clicks(engine) == []
    later = datetime.now(UTC) + rules.EARLY + timedelta(seconds=1)
    add(engine, recorder, None, at=later)
    add(engine, recorder, design, at=later)
    assert recorder.flush() == 2 and [c.subscriber_id for c in clicks(engine)] == [None, design]


def test_clicks_before_the_issue_was_sent_are_the_editors_and_not_counted(engine: Engine) -> None:
    built(engine)  # previews and test sends carry the same links
    recorder = record(engine, None)
    assert recorder.flush() == 0 and clicks(engine) == []


def test_tracked_clicks_count_unique_readers_and_survive_erasure(engine: Engine) -> None:
    sent(engine, track=True)
    one, two = reader_of(engine, "all0@example.com"), reader_of(engine, "all1@example.com")
    recorder = record(engine, one, 1)
    for reader, link in ((one, 1), (one, 2), (two, 1), (None, 1)):
        add(engine, recorder, reader, link)
    recorder.flush()
    add(engine, recorder, two, 2)
    add(engine, recorder, two, 2)
    recorder.close()
    expected = engagement(engine, 1).clicks
    exported = privacy.export_subscriber(engine, "all0@example.com")["clicks"]
    assert [c["target"] for c in exported] == [SITE + "iconsmith-vs-huewise"] * 2 + [SITE + "draftsmith-vs-lede"]
    assert expected.clicks == 7 and expected.readers == 2 and expected.tracked
    assert [(line.clicks, line.unique) for line in expected.lines] == [(4, 2), (3, 2)]
    privacy.forget(engine, "all0@example.com", secret=TEST_SECRET_KEY)
    assert one not in {c.subscriber_id for c in clicks(engine)}
    assert engagement(engine, 1).clicks == expected  # the counts stay, unique ones too


def test_a_token_of_a_reader_who_left_counts_as_an_anonymous_click(engine: Engine) -> None:
    sent(engine, track=True)
    erased = reader_of(engine, "all0@example.com")
    privacy.forget(engine, "all0@example.com", secret=TEST_SECRET_KEY)
    recorder = record(engine, erased)
    assert recorder.flush() == 1
    assert [c.subscriber_id for c in clicks(engine)] == [None]  # erasure is not undone by a later click


def test_a_database_refusing_the_batch_keeps_it_for_the_next_write(engine: Engine, tmp_path: Path) -> None:
    sent(engine)
    refusing = make_engine(f"sqlite:///{tmp_path / 'no-such-folder' / 'clicks.db'}")
    broken = ClickRecorder(refusing, recipients=directory_for(engine), background=False)
    with session_scope(engine) as session:
        found = find_link(session, 1, 1)
    assert found is not None
    broken.record(Click(found.issue_id, found.id, None, datetime.now(UTC)))
    with pytest.raises(OperationalError):
        broken.flush()
    assert broken.pending() == 1  # kept for the next try, not lost
    with pytest.raises(OperationalError):  # a shutdown that cannot write says so
        broken.close()
    refusing.dispose()


def test_the_writer_thread_rides_out_a_refusing_database(engine: Engine, tmp_path: Path) -> None:
    sent(engine)
    refusing = make_engine(f"sqlite:///{tmp_path / 'no-such-folder' / 'clicks.db'}")
    recorder = ClickRecorder(refusing, recipients=directory_for(engine), interval=0.02)
    recorder.record(recorder_click(engine))
    time.sleep(0.3)  # a dozen tries by the writer's own thread, each refused
    assert recorder.pending() == 1 and recorder.writing()
    with pytest.raises(OperationalError):
        recorder.close()
    refusing.dispose()


def recorder_click(engine: Engine) -> Click:
    with session_scope(engine) as session:
        found = find_link(session, 1, 1)
    assert found is not None
    return Click(found.issue_id, found.id, None, datetime.now(UTC))


def test_the_writer_thread_writes_buffered_clicks_by_itself(engine: Engine) -> None:
    sent(engine)
    recorder = ClickRecorder(engine, recipients=directory_for(engine), interval=0.05)
    add(engine, recorder, None)
    deadline = time.monotonic() + 10
    while recorder.pending() and time.monotonic() < deadline:
        time.sleep(0.02)  # the writer's own thread: the buffer emptying is the signal
    recorder.close()
    assert len(clicks(engine)) == 1


def test_figures_and_chart_of_an_issue_nobody_clicked_yet(engine: Engine) -> None:
    sent(engine)
    found = engagement(engine, 1)
    assert found.submitted == 10 and found.clicks.clicks == 0 and found.click_through == 0
    assert [line.label for line in found.clicks.lines] == ["Iconsmith vs Huewise", "Draftsmith vs Lede"]
    with session_scope(engine) as session:
        issue = issues.get_issue(session, 1)
        assert issue.id is not None
        assert click_figures(session, issue.id) == found.clicks
    svg = clicks_chart(found.clicks.lines)
    assert "<title" in svg and "Iconsmith vs Huewise: 0 clicks; Draftsmith vs Lede: 0 clicks." in svg


def test_the_chart_names_every_figure_and_escapes_labels() -> None:
    svg = clicks_chart([Line("A <b> vs C", "a-vs-c", 12, 5), Line("D vs E", "d-vs-e", 3, 3)], tracked=True)
    assert svg.startswith("<svg") and 'role="img"' in svg and 'aria-labelledby="clicks-title clicks-desc"' in svg
    assert "A &lt;b&gt; vs C: 12 clicks, 5 unique; D vs E: 3 clicks, 3 unique." in svg
    assert "<b>" not in svg and ">12 clicks, 5 unique</text>" in svg
    assert clicks_chart([]) == ""


@pytest.mark.parametrize(("text", "url"), [
    ("(see https://site.example.com/method).", "https://site.example.com/method"),
    ("https://site.example.com/a_(b) and", "https://site.example.com/a_(b)"),
    ("at https://site.example.com/x?y=1, then", "https://site.example.com/x?y=1"),
])
def test_a_url_in_running_text_ends_before_the_sentences_punctuation(text: str, url: str) -> None:
    found = re.search(r"https?://[^\s<>\"]+", text)
    assert found is not None
    assert _trimmed(found[0])[0] == url
