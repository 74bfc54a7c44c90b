"""What the editor's desk does to an issue: edit and re-render, approve, schedule, pause, resume, cancel, send a
test, ask for a review. Plain functions; the web routes parse forms and call these.

Re-rendering takes the same ``publishing.Renderer`` building does (re-exported here for the desk's routes).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from newsletter import deliveries, issues, vote_figures
from newsletter.catalog import store
from newsletter.clock import SYSTEM, Clock
from newsletter.db import session_scope
from newsletter.digest import build_digest
from newsletter.dispatch import Envelope, personalise
from newsletter.editing import Arrangement, Edits
from newsletter.errors import IssueError, IssueStateError
from newsletter.models import IssueRow
from newsletter.providers.base import Provider
from newsletter.publishing import CANDIDATES, preview, preview_recipient, refuse_oversized, render_issue
from newsletter.publishing import Renderer as Renderer  # re-exported: the desk's routes name it here
from newsletter.recipients import RecipientSource
from newsletter.render import PreparedEmail
from newsletter.statuses import IssueStatus
from newsletter.values import Digest, Message, Week
from newsletter.zones import LocalTime

MAX_TEST_ADDRESSES = 10


@dataclass(frozen=True, slots=True)
class LineupEntry:
    """One comparison of the issue's week and where it stands: ``shown``, ``dropped`` or ``waiting`` (over the
    limit); ``pinned`` ones are shown first."""

    slug: str
    title: str
    state: str
    pinned: bool


def edits_of(issue: IssueRow) -> Edits:
    """The editor's changes stored on ``issue``."""
    return Edits(Arrangement.parse(issue.arrangement), issue.note, issue.subject_override, issue.preheader_override)


def candidates(engine: Engine, week: Week, *, site_url: str) -> Digest:
    """Every comparison of ``week`` as a digest, before arrangement and limit; IssueError if none is left."""
    with session_scope(engine) as session:
        comparisons = store.comparisons_for_week(session, week)
    digest = build_digest(comparisons, week=week, site_url=site_url, limit=CANDIDATES)
    if digest is None:
        raise IssueError(f"the catalog holds no comparison for {week} any more; import it again")
    return digest


def edit(engine: Engine, number: int, change: Callable[[Edits, tuple[str, ...]], Edits], *,
         renderer: Renderer) -> Edits:
    """Apply ``change`` (given the current edits and the slugs shown now) and re-render every cohort at once.

    Only a draft or approved issue can change; an approved one goes back to draft, since what was approved is
    no longer what would be sent.
    """
    with session_scope(engine) as session:
        issue = _editable(session, number)
        before, week = edits_of(issue), Week.parse(issue.week)
        recap = vote_figures.recap(session, before=number, min_votes=renderer.recap_min_votes)
    pool = candidates(engine, week, site_url=renderer.site_url)
    shown = tuple(e.slug for e in before.digest(pool, renderer.limit).entries)
    after = change(before, shown)
    rendering = render_issue(after.digest(pool, renderer.limit), after, renderer=renderer, recap=recap)
    with session_scope(engine) as session:
        issue = _editable(session, number)
        issue.arrangement, issue.note = after.arrangement.dumps(), after.note
        issue.subject_override, issue.preheader_override = after.subject, after.preheader
        issues.replace_emails(session, issue, rendering.emails)
        renderer.route_links(session, issue, rendering)
        deliveries.queue(session, issue, renderer.recipients)
        if issue.status == IssueStatus.APPROVED:
            issues.transition(issue, IssueStatus.DRAFT)
            issue.send_at = issue.approved_by = None
    return after


def lineup(engine: Engine, number: int, *, site_url: str, limit: int) -> list[LineupEntry]:
    """Every comparison of the issue's week in the order the editor sees them: shown, then waiting, then dropped."""
    with session_scope(engine) as session:
        issue = issues.get_issue(session, number)
        edits, week = edits_of(issue), Week.parse(issue.week)
    pool = candidates(engine, week, site_url=site_url)
    arrangement = edits.arrangement
    shown = arrangement.arrange(pool.entries, limit)
    shown_slugs = {e.slug for e in shown}
    waiting = [e for e in pool.entries if e.slug not in shown_slugs and e.slug not in arrangement.dropped]
    dropped = [e for e in pool.entries if e.slug in arrangement.dropped]
    return ([LineupEntry(e.slug, e.title, "shown", e.slug in arrangement.pinned) for e in shown]
            + [LineupEntry(e.slug, e.title, "waiting", False) for e in waiting]
            + [LineupEntry(e.slug, e.title, "dropped", False) for e in dropped])


def approve(engine: Engine, number: int, *, editor: str, send_at: datetime | None = None) -> None:
    """Approve a draft; with ``send_at`` it goes out then, without it at the next ``NEWSLETTER_SEND_CRON``.

    IssueTooLarge when a cohort's email would be clipped by Gmail: what is approved must be sendable.
    """
    refuse_oversized(engine, number)
    with session_scope(engine) as session:
        issue = issues.get_issue(session, number)
        if issue.status != IssueStatus.APPROVED:
            issues.transition(issue, IssueStatus.APPROVED)
        issue.approved_by, issue.send_at = editor, send_at


def pause(engine: Engine, number: int) -> None:
    """Hold an approved or sending issue; a send in progress stops after the batches in flight."""
    with session_scope(engine) as session:
        issues.transition(issues.get_issue(session, number), IssueStatus.PAUSED)


def resume(engine: Engine, number: int, *, recipients: RecipientSource, local: LocalTime | None = None,
           clock: Clock = SYSTEM) -> None:
    """Send a paused issue again (readers who joined meanwhile included, each with a due time as ``start_sending``
    gives it; held waves keep theirs); the scheduler or workers carry it on."""
    with session_scope(engine) as session:
        issue = issues.get_issue(session, number)
        if issue.status != IssueStatus.PAUSED:
            raise IssueStateError(f"issue {number} is {issue.status}; only a paused issue resumes")
        issues.start_sending(session, issue, recipients, local=local, now=clock.now())


def cancel(engine: Engine, number: int) -> int:
    """Cancel an issue that has not finished; its queued deliveries are withdrawn. Returns how many."""
    with session_scope(engine) as session:
        issue = issues.get_issue(session, number)
        issues.transition(issue, IssueStatus.CANCELLED)
        assert issue.id is not None
        return deliveries.withdraw_issue(session, issue.id, reason="issue cancelled")


def send_test(engine: Engine, number: int, addresses: Sequence[str], *, cohort: str, provider: Provider,
              envelope: Envelope) -> int:
    """Send the issue as ``cohort`` gets it to ``addresses`` (subject marked ``[Test]``, links inert)."""
    if not addresses or len(addresses) > MAX_TEST_ADDRESSES:
        raise IssueError(f"give between 1 and {MAX_TEST_ADDRESSES} addresses for a test")
    with session_scope(engine) as session:
        rendered = issues.rendered_emails(session, issues.get_issue(session, number))
    if cohort not in rendered:
        raise IssueError(f"issue {number} has no version for the cohort {cohort!r}")
    prepared, stand_in = PreparedEmail.of(rendered[cohort]), preview_recipient(envelope)
    messages = []
    for address in addresses:
        message = personalise(prepared, replace(stand_in, address=address), delivery_id=0, issue_number=number,
                              envelope=envelope)
        messages.append(replace(message, subject="[Test] " + message.subject))
    with provider:
        results = provider.send_messages(messages)
    refused = [r.reason or "refused" for r in results if not r.submitted]
    if refused:
        raise IssueError(f"the service refused the test: {refused[0]}")
    return len(messages)


def request_review(engine: Engine, number: int, *, addresses: Sequence[str], provider: Provider,
                   envelope: Envelope, desk_url: str, clock: Clock) -> int:
    """Email the editors a preview of a draft with a link to approve it, once per issue (the time it went out
    read from ``clock``); returns emails sent."""
    with session_scope(engine) as session:
        issue = issues.get_issue(session, number)
        if issue.status != IssueStatus.DRAFT or issue.review_requested_at is not None or not addresses:
            return 0
    rendered, html_body, text_body = preview(engine, number, envelope=envelope)
    link = f"{desk_url.rstrip('/')}/editor/issues/{number}"
    banner = (f'<div style="padding:12px 16px;background:#fef3c7;color:#111827;font:15px/1.5 sans-serif">'
              f'Issue {number} is waiting for your review. <a href="{html.escape(link)}">Preview, edit and approve '
              f'it on the editor\'s desk</a>. It is sent only once approved.</div>')
    html_body = re.sub(r"(<body[^>]*>)", lambda m: m[1] + banner, html_body, count=1)
    text_body = f"Issue {number} is waiting for your review. Approve it here: {link}\n\n{text_body}"
    messages = [Message(0, envelope.sender, address, f"[Review #{number}] {rendered.subject}", html_body, text_body)
                for address in addresses]
    with provider:
        provider.send_messages(messages)
    with session_scope(engine) as session:
        issues.get_issue(session, number).review_requested_at = clock.now()
    return len(messages)


def _editable(session: Session, number: int) -> IssueRow:
    issue = issues.get_issue(session, number)
    if issue.status not in issues.EDITABLE:
        raise IssueStateError(f"issue {number} is {issue.status}; edits close once sending starts")
    return issue
