"""Plain functions the scheduler and CLI call: build the week's issue, send an issue, preview one.

A ``Renderer`` says how an issue is built (recipient source, templates, context, digest settings) and a
``dispatch.Sending`` how it is sent; the composition root makes both (``Wiring.renderer``, ``Wiring.sending``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from datetime import datetime

import jinja2
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from newsletter import checks, deliveries, issues, vote_figures
from newsletter.catalog import store
from newsletter.clicks.links import Redirects, Target, route_issue
from newsletter.clock import SYSTEM, Clock
from newsletter.db import session_scope
from newsletter.digest import build_digest
from newsletter.dispatch import Envelope, Sending, SendReport, personalise, send_issue
from newsletter.editing import Edits, note_html, note_text
from newsletter.errors import IssueError
from newsletter.models import IssueRow
from newsletter.providers.base import Provider
from newsletter.recipients import RecipientSource
from newsletter.render import PreparedEmail, RenderContext, render_cohort
from newsletter.statuses import IssueStatus
from newsletter.values import Cohort, Digest, Recap, Recipient, RenderedEmail, Week
from newsletter.worker import hand_to_workers

# Every comparison of a week is a candidate; the editor's arrangement and the digest limit choose among them.
CANDIDATES = 1000


@dataclass(frozen=True, slots=True)
class BuildOutcome:
    """What building a week's issue did."""

    week: Week
    number: int | None
    created: bool
    subject: str | None = None
    cohorts: tuple[tuple[str, int], ...] = ()
    empty_cohorts: tuple[str, ...] = ()
    queued: int = 0

    @property
    def quiet(self) -> bool:
        """Nothing new this week: no issue."""
        return self.number is None


@dataclass(frozen=True, slots=True)
class Renderer:
    """How an issue is built and re-rendered: its readers' cohorts, the templates, and the digest's settings."""

    recipients: RecipientSource
    env: jinja2.Environment
    context: RenderContext
    site_url: str
    limit: int = 8
    recap_min_votes: int = 20  # NEWSLETTER_VOTE_RECAP_MIN_VOTES: fewer votes on a tool, and the recap leaves it out
    # Where the emails' links to the site are routed for counting clicks; None leaves them pointing at the site.
    redirects: Redirects | None = None

    def route_links(self, session: Session, issue: IssueRow, rendering: Rendering) -> None:
        """Point the issue's stored emails' site links at the click redirect (when one is configured)."""
        if self.redirects is not None:
            route_issue(session, issue, rendering.targets, self.redirects)


def build_issue(engine: Engine, *, week: Week, renderer: Renderer) -> BuildOutcome:
    """Build ``week``'s issue once: an existing issue is returned as it is; a quiet week builds nothing.

    IssueTooLarge, with nothing stored, when a cohort's email would pass Gmail's clipping size.
    """
    with session_scope(engine) as session:
        existing = issues.issue_for_week(session, week)
        if existing is not None:
            return BuildOutcome(week, existing.number, False, existing.subject)
        comparisons = store.comparisons_for_week(session, week)
        recap = vote_figures.recap(session, before=None, min_votes=renderer.recap_min_votes)
    candidates = build_digest(comparisons, week=week, site_url=renderer.site_url, limit=CANDIDATES)
    if candidates is None:
        return BuildOutcome(week, None, False)
    edits = Edits()
    rendering = render_issue(edits.digest(candidates, renderer.limit), edits, renderer=renderer, recap=recap)
    checks.refuse_oversized({email.cohort_key: email for email, _ in rendering.emails})
    recipients = renderer.recipients
    try:
        with session_scope(engine) as session:
            issue = issues.create_issue(session, week=week, emails=rendering.emails)
            renderer.route_links(session, issue, rendering)
            queued = deliveries.queue(session, issue, recipients)
            outcome = BuildOutcome(week, issue.number, True, issue.subject, rendering.sizes, rendering.empty, queued)
        recipients.issue_built()  # after the issue is stored: a build that fails skips nobody's issue
        return outcome
    except IntegrityError:
        # Another process built this week's issue between our check and our insert: theirs stands.
        with session_scope(engine) as session:
            raced = issues.issue_for_week(session, week)
            if raced is None:
                raise
            return BuildOutcome(week, raced.number, False, raced.subject)


@dataclass(frozen=True, slots=True)
class Rendering:
    """An issue rendered for every cohort: rendered emails with their comparison counts, cohort sizes, empty
    cohorts."""

    emails: list[tuple[RenderedEmail, int]]
    sizes: tuple[tuple[str, int], ...]
    empty: tuple[str, ...]
    targets: dict[str, Target] = field(default_factory=dict)  # the digest's links, by URL, for the link table


def render_issue(digest: Digest, edits: Edits, *, renderer: Renderer, recap: Recap | None = None) -> Rendering:
    """Render ``digest`` once for the ``all`` cohort (the web version) and once per other cohort that has readers.

    A cohort whose preferences match nothing this week gets no rendered email, so its readers get nothing.
    ``recap`` (the previous issue's votes, ``vote_figures.recap``) opens every cohort's email it has lines for.
    """
    env = renderer.env
    context = replace(renderer.context, note_html=note_html(edits.note), note_text=note_text(edits.note),
                      recap=recap)
    emails = [(render_cohort(digest, Cohort(), env=env, context=context), len(digest.entries))]
    sizes, empty = [], []
    for cohort, size in renderer.recipients.cohorts():
        narrowed = edits.for_cohort(digest, cohort)
        if narrowed is None:
            empty.append(cohort.key)
            continue
        sizes.append((cohort.key, size))
        if cohort.key != issues.ALL:
            emails.append((render_cohort(narrowed, cohort, env=env, context=context), len(narrowed.entries)))
    targets = {e.url: Target(e.url, e.slug, e.title) for e in digest.entries}
    return Rendering(emails, tuple(sizes), tuple(empty), targets)


def publish_week(engine: Engine, *, week: Week, renderer: Renderer, provider: Provider | None, sending: Sending,
                 stop: threading.Event | None = None, clock: Clock = SYSTEM) -> tuple[BuildOutcome, SendReport | None]:
    """Build the week's issue (once) and send it; a sent or paused issue is left alone, a quiet week sends nothing.

    With ``provider=None`` the issue is handed to ``newsletter worker`` processes instead of sent here.
    """
    outcome = build_issue(engine, week=week, renderer=renderer)
    if outcome.number is None:
        return outcome, None
    with session_scope(engine) as session:
        status = issues.get_issue(session, outcome.number).status
    if status not in (IssueStatus.DRAFT, IssueStatus.APPROVED, IssueStatus.SENDING):
        return outcome, None
    return outcome, send_now(engine, outcome.number, provider=provider, sending=sending, stop=stop, clock=clock)


def send_now(engine: Engine, number: int, *, provider: Provider | None, sending: Sending,
             stop: threading.Event | None = None, top_up: bool = True, clock: Clock = SYSTEM) -> SendReport | None:
    """Send issue ``number`` here (what is due by ``clock``), or with ``provider=None`` hand it to the workers (and
    return None).

    IssueTooLarge when a cohort's email would pass Gmail's clipping size (the desk can drop comparisons).
    """
    refuse_oversized(engine, number)
    if provider is None:
        hand_to_workers(engine, number, recipients=sending.recipients, local=sending.options.local, clock=clock,
                        size=sending.options.batch_size)
        return None
    return send_issue(engine, number, provider=provider, sending=sending, stop=stop, top_up=top_up, clock=clock)


def refuse_oversized(engine: Engine, number: int) -> None:
    """IssueTooLarge, saying what to cut, when a stored cohort of issue ``number`` would be clipped by Gmail.

    A send already under way is let finish as it began: some readers have that email already.
    """
    with session_scope(engine) as session:
        issue = issues.get_issue(session, number)
        if issue.status == IssueStatus.SENDING:
            return
        rendered = issues.rendered_emails(session, issue)
    checks.refuse_oversized(rendered)


def week_issue(engine: Engine, week: Week) -> tuple[int, str, datetime | None] | None:
    """The issue of ``week`` as (number, status, scheduled send time), or None when none was built."""
    with session_scope(engine) as session:
        issue = issues.issue_for_week(session, week)
        return None if issue is None else (issue.number, issue.status, issue.send_at)


def due_issues(engine: Engine, *, clock: Clock) -> list[int]:
    """Approved issues whose scheduled send time has come by ``clock``, oldest first."""
    now = clock.now()
    with session_scope(engine) as session:
        return list(session.exec(select(IssueRow.number).where(
            IssueRow.status == IssueStatus.APPROVED, col(IssueRow.send_at).is_not(None), col(IssueRow.send_at) <= now)
            .order_by(col(IssueRow.number))))


@dataclass(frozen=True, slots=True)
class PlannedCohort:
    """Who a send would reach in one cohort, and with which subject."""

    key: str
    subject: str
    addresses: tuple[str, ...]


def plan_send(engine: Engine, number: int, *, recipients: RecipientSource, page: int = 1000) -> list[PlannedCohort]:
    """What ``send`` would do now, without sending: per rendered cohort, the active readers still to get it."""
    with session_scope(engine) as session:
        issue = issues.get_issue(session, number)
        rendered = issues.rendered_emails(session, issue)
        settled = deliveries.settled_subscribers(session, issue)
    plan = []
    for cohort, _size in recipients.cohorts():
        if cohort.key not in rendered:
            continue
        addresses: list[str] = []
        after = 0
        while ids := recipients.recipient_ids(cohort, after=after, limit=page):
            after = ids[-1]
            pending = [i for i in ids if i not in settled]
            found = recipients.by_ids(pending)
            addresses.extend(found[i].address for i in pending if i in found)
        plan.append(PlannedCohort(cohort.key, rendered[cohort.key].subject, tuple(addresses)))
    return plan


def preview_recipient(envelope: Envelope) -> Recipient:
    """Stand-in links for a preview that no subscriber will use."""
    base = envelope.public_url.rstrip("/")
    return Recipient(0, "preview@" + envelope.domain, f"{base}/unsubscribe/preview", f"{base}/preferences/preview",
                     f"mailto:unsubscribe@{envelope.domain}")


def preview(engine: Engine, number: int, *, envelope: Envelope, recipients: RecipientSource | None = None,
            address: str | None = None) -> tuple[RenderedEmail, str, str]:
    """Issue ``number`` as one subscriber (or a neutral reader) would get it: (rendered email, html, text)."""
    with session_scope(engine) as session:
        issue = issues.get_issue(session, number)
        rendered = issues.rendered_emails(session, issue)
    recipient, key = preview_recipient(envelope), issues.ALL
    if address is not None:
        found = recipients.find(address) if recipients is not None else None
        if found is None:
            raise IssueError(f"{address} is not an active subscriber; `newsletter subscribers list` shows them")
        recipient, key = found[0], found[1].key
        if key not in rendered:
            raise IssueError(f"{address} gets nothing from issue {number}: no comparison matched their preferences")
    message = personalise(PreparedEmail.of(rendered[key]), recipient, delivery_id=0, issue_number=number,
                          envelope=envelope)
    return rendered[key], message.html, message.text

