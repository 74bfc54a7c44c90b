"""The one loop that claims deliveries, personalises, calls a provider and records results.

Each batch (fixed when the send starts, see ``deliveries.batches``): claim it under a lease → personalise
(string fill) → ``provider.send_batch``, the lease renewed meanwhile → record every result, fenced by the claim,
and release it in one commit (each delivery row written once, with its result). Up to
``concurrency`` batches are in flight at once, paced to ``rate_limit`` messages per second. Kill the process
anywhere: unsent deliveries stay queued, a claimed batch is reclaimed whole when its lease expires (to an
idempotent provider byte-identical, under the same key; a provider that can be asked is first asked what it
accepted of it, see ``reconcile``), and the next run finishes the job.

Outcomes per batch: submitted / rejected per message (a permanent refusal also suppresses the subscriber);
``failed`` for the whole batch when the service refused the request or a timeout left its fate unknown;
``ProviderUnavailable`` releases the batch and stops the run (run again later); ``ProviderAuthError``
pauses the issue. A provider that fails part-way says what it settled first (``ProviderError.settled`` and
``unknown``): those are recorded, and only the rest of the batch shares the failure.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from newsletter import deliveries, issues, metrics, outage, reconcile
from newsletter.clock import SYSTEM, Clock
from newsletter.db import session_scope
from newsletter.errors import IssueStateError, ProviderAmbiguous, ProviderAuthError, ProviderError, ProviderRequestError
from newsletter.providers.base import Provider
from newsletter.recipients import RecipientSource
from newsletter.render import PreparedEmail
from newsletter.statuses import IssueStatus, SubscriberStatus
from newsletter.values import Message, Recipient, SendResult
from newsletter.votes import PREVIEW_VOTER
from newsletter.zones import LocalTime

DEFAULT_LEASE = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class SendOptions:
    """The send loop's knobs: messages per provider call, calls in flight, messages per second, claim lease, and
    ``local`` delivery (each reader at their own local send time; None sends to everyone at once)."""

    batch_size: int = 100
    concurrency: int = 1
    rate_limit: float | None = None
    lease: timedelta = DEFAULT_LEASE
    local: LocalTime | None = None


@dataclass(frozen=True, slots=True)
class Envelope:
    """Who sends, and where the web version lives."""

    sender: str
    publication: str
    domain: str
    public_url: str

    def web_url(self, number: int) -> str:
        """The issue's web version, free of personal links."""
        return f"{self.public_url.rstrip('/')}/archive/{number}"


@dataclass(frozen=True, slots=True)
class Sending:
    """What every send of an issue needs besides a provider: whom (the recipient source), from whom, and how."""

    recipients: RecipientSource
    envelope: Envelope
    options: SendOptions = SendOptions()


@dataclass
class SendReport:
    """Running totals of one send."""

    issue: int
    submitted: int = 0
    rejected: int = 0
    failed: int = 0
    dropped: int = 0
    batches: int = 0
    status: str = IssueStatus.SENDING
    started: float = field(default_factory=time.monotonic)
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def done(self) -> int:
        """Deliveries with an outcome so far."""
        return self.submitted + self.rejected + self.failed + self.dropped

    @property
    def rate(self) -> float:
        """Outcomes per second since the send started."""
        return self.done / max(time.monotonic() - self.started, 1e-9)

    def add(self, results: list[SendResult], *, dropped: int, failed: int, reason: str | None) -> None:
        """Count one batch's outcomes."""
        self.batches += 1
        metrics.outcomes(results, failed=failed, dropped=dropped)
        self.dropped += dropped
        self.failed += failed
        if failed and reason:
            self.reasons[reason] = self.reasons.get(reason, 0) + failed
        for result in results:
            if result.submitted:
                self.submitted += 1
            else:
                self.rejected += 1
                key = result.reason or "unknown"
                self.reasons[key] = self.reasons.get(key, 0) + 1


Progress = Callable[[SendReport], None]


class Pacer:
    """Spaces batches so that at most ``rate`` messages per second leave, across all worker threads."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.rate, self.clock, self.sleep = rate, clock, sleep
        self._next = clock()
        self._lock = threading.Lock()

    def wait(self, messages: int) -> None:
        """Block until ``messages`` more may go out."""
        with self._lock:
            start = max(self._next, self.clock())
            self._next = start + messages / self.rate
        delay = start - self.clock()
        if delay > 0:
            self.sleep(delay)


def personalise(prepared: PreparedEmail, recipient: Recipient, *, delivery_id: int, issue_number: int,
                envelope: Envelope, fill: bool = True, voter: str = "") -> Message:
    """One recipient's message: slots filled (unless ``fill`` is off), unsubscribe headers set (RFC 2369, 8058).

    ``voter`` is the reader's voter token for this issue (``RecipientSource.voter_token``); previews leave it empty,
    and their vote links then carry ``votes.PREVIEW_VOTER``: a page that says it is a preview, never a vote.
    """
    values = {"unsubscribe_url": recipient.unsubscribe_url, "preferences_url": recipient.preferences_url,
              "web_url": envelope.web_url(issue_number), "voter": voter or PREVIEW_VOTER}
    headers = (
        ("List-Unsubscribe", f"<{recipient.unsubscribe_url}>, <{recipient.unsubscribe_mailto}>"),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ("List-Id", f"{envelope.publication} <weekly.{envelope.domain}>"),
        ("X-Newsletter-Issue", str(issue_number)),
        ("X-Newsletter-Delivery", str(delivery_id)),
    )
    html, text = (prepared.html.fill(values), prepared.text.fill(values)) if fill else ("", "")
    return Message(delivery_id, envelope.sender, recipient.address, prepared.rendered.subject, html, text, headers,
                   prepared.template, tuple((name, values[name]) for name in prepared.used))


@dataclass(frozen=True)
class _Run:
    engine: Engine
    issue_id: int
    number: int
    prepared: dict[str, PreparedEmail]
    provider: Provider
    recipients: RecipientSource
    envelope: Envelope
    batch_size: int
    lease: timedelta
    clock: Clock = SYSTEM
    since: datetime | None = None  # the issue's build: the start of any search of the provider's record

    @property
    def url(self) -> str:
        """The database's URL, for outage messages."""
        return self.engine.url.render_as_string(hide_password=False)


def send_issue(engine: Engine, number: int, *, provider: Provider, sending: Sending, progress: Progress | None = None,
               stop: threading.Event | None = None, top_up: bool = True, clock: Clock = SYSTEM) -> SendReport:
    """Send issue ``number`` to every queued delivery that is due by ``clock``; resumable, and safe to run in
    several processes. With local delivery it returns when the waves due so far are out (the issue stays
    ``sending`` until its last wave is); a later run sends the next.

    ``top_up`` first queues readers who joined since the build (one pass over the recipients); workers skip it,
    since the issue was queued when it was handed to them. Setting ``stop`` lets the batches in flight finish
    and be recorded, then returns. Leases are timed by ``clock``.
    """
    options = sending.options
    size = min(options.batch_size, provider.max_batch)
    with session_scope(engine) as session:
        issue = issues.get_issue(session, number)
        issues.start_sending(session, issue, sending.recipients, top_up=top_up, local=options.local, now=clock.now(),
                             size=size)
        rendered = issues.rendered_emails(session, issue)
        prepared = {key: PreparedEmail.of(r, key=f"{number}:{key}") for key, r in rendered.items()}
        assert issue.id is not None
        run = _Run(engine, issue.id, number, prepared, provider, sending.recipients, sending.envelope, size,
                   options.lease, clock, issue.created_at)
    report = SendReport(number)
    pacer = Pacer(options.rate_limit) if options.rate_limit else None
    _drive(run, report, progress, options.concurrency, pacer, stop or threading.Event())
    report.status = _finish(engine, number)
    return report


def _drive(run: _Run, report: SendReport, progress: Progress | None, concurrency: int, pacer: Pacer | None,
           stop: threading.Event) -> None:
    """Run ``concurrency`` threads until the queue is empty, ``stop`` is set, or a provider error stops them."""
    lock = threading.Lock()
    # A provider error ends this run's threads, not the caller's: ``stop`` belongs to the caller (a worker's
    # SIGTERM), and a worker that met a provider outage must poll again, not exit.
    failing = threading.Event()

    def worker() -> None:
        while not (stop.is_set() or failing.is_set()) and _still_sending(run) and (
                claim := deliveries.claim(run.engine, run.issue_id, run.batch_size, run.lease, clock=run.clock)):
            try:
                results, dropped, failed, reason = _send_batch(run, claim, pacer, stop)
            except ProviderError:
                failing.set()
                raise
            with lock:
                report.add(results, dropped=dropped, failed=failed, reason=reason)
                if progress:
                    progress(report)

    with run.provider, ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="send") as pool:
        futures = [pool.submit(worker) for _ in range(concurrency)]
        errors = [error for future in futures if (error := future.exception()) is not None]
    if errors:
        raise next((e for e in errors if isinstance(e, ProviderAuthError)), errors[0])


def _still_sending(run: _Run) -> bool:
    """Checked before every claim, so an editor's pause or cancel takes effect after the batches in flight."""
    with session_scope(run.engine) as session:
        return issues.is_sending(session, run.issue_id)


Outcome = tuple[list[SendResult], int, int, str | None]


def _send_batch(run: _Run, claim: deliveries.Claim, pacer: Pacer | None = None,
                stop: threading.Event | None = None) -> Outcome:
    """Send one claimed batch; one taken back after a crash is first reconciled, where the provider can be
    asked, so that only what the service does not have yet goes out (an idempotent provider gets it whole)."""
    settled: list[SendResult] = []
    if claim.reclaimed and not run.provider.idempotent and run.since is not None:
        settled, rest = reconcile.reclaimed(run.engine, claim, provider=run.provider, recipients=run.recipients,
                                            since=run.since, lease=run.lease, clock=run.clock, stop=stop)
        if rest is None:
            return settled, 0, 0, None
        claim = rest
    results, dropped, failed, reason = _send_claim(run, claim, pacer)
    return settled + results, dropped, failed, reason


def _send_claim(run: _Run, claim: deliveries.Claim, pacer: Pacer | None = None) -> Outcome:
    """Send one claimed batch when ``pacer`` allows and record it: (results, dropped, failed, failure reason),
    counting only what this sender recorded (a batch taken back after its lease ran out is counted by whoever
    took it). The lease is renewed from the claim until the answer, waiting for the rate limit included."""
    messages, dropped = _messages(run, claim)
    if dropped and not deliveries.record(run.engine, claim, withdrawn=dropped, clock=run.clock):
        return [], 0, 0, None  # the lease is gone already: the batch is someone else's now
    if messages is None:
        reason = deliveries.UNKNOWN_OUTCOME + "a reader of this batch is gone, so it cannot be sent again as it was"
        written = deliveries.record(run.engine, claim, failed=claim.ids, reason=reason, clock=run.clock)
        return [], 0, len(written), reason
    ids = [message.delivery_id for message in messages]
    try:
        with deliveries.Keeper(run.engine, claim, run.lease, clock=run.clock):
            if pacer:
                pacer.wait(len(messages))
            results = metrics.timed_send(run.provider, messages, key=claim.key) if messages else []
    except ProviderAuthError as exc:
        _keep_settled(run, claim, exc)
        deliveries.release(run.engine, claim, unsent=True)  # refused credentials: the rest reached no one
        _pause(run.engine, run.number, str(exc))
        raise
    except (ProviderRequestError, ProviderAmbiguous) as exc:
        # The marker keeps automatic retries off the batches that may have gone out (see maintenance).
        reason = (deliveries.UNKNOWN_OUTCOME if isinstance(exc, ProviderAmbiguous) else "") + str(exc)
        settled, rest = _keep_settled(run, claim, exc)
        failed = deliveries.record(run.engine, claim, failed=[i for i in ids if i in rest], reason=reason,
                                    clock=run.clock)
        return settled, len(dropped), len(failed) + len(exc.unknown), reason
    except ProviderError as exc:
        _keep_settled(run, claim, exc)
        # Only the rows still queued go back: what was settled stays recorded. The service answered (5xx, 429,
        # no connection), so without an idempotency key the rest surely did not go: fresh rows, nothing to
        # reconcile. With one, the batch keeps its key and is retried byte-identical.
        deliveries.release(run.engine, claim, unsent=not run.provider.idempotent)
        raise
    # The provider has the batch now: its results ride out a database outage (fencing keeps a late write out).
    written = outage.persist(lambda: deliveries.record(run.engine, claim, results, clock=run.clock), url=run.url,
                             within=run.lease.total_seconds())
    results = [result for result in results if result.delivery_id in written]
    _suppress_permanent(run, claim, results)
    return results, len(dropped), 0, None


def _keep_settled(run: _Run, claim: deliveries.Claim, exc: ProviderError) -> tuple[list[SendResult], set[int]]:
    """Record what a provider settled before failing part-way (``exc.settled``, ``exc.unknown``), so that a
    retry never sends those again; returns the settled results this sender recorded and the delivery ids of
    the claim left to the failure."""
    done = {r.delivery_id for r in exc.settled} | set(exc.unknown)
    settled: list[SendResult] = []
    if done:
        written = deliveries.record(run.engine, claim, exc.settled, failed=exc.unknown,
                                    reason=deliveries.UNKNOWN_OUTCOME + str(exc), clock=run.clock)
        settled = [result for result in exc.settled if result.delivery_id in written]
        _suppress_permanent(run, claim, settled)
    return settled, {d for d in claim.ids if d not in done}


def _suppress_permanent(run: _Run, claim: deliveries.Claim, results: Sequence[SendResult]) -> None:
    by_delivery = {d: s for d, s, _ in claim.rows}
    permanent = [by_delivery[r.delivery_id] for r in results if not r.submitted and r.permanent]
    if permanent:
        run.recipients.suppress(permanent, reason=SubscriberStatus.BOUNCED)


def _messages(run: _Run, claim: deliveries.Claim) -> tuple[list[Message] | None, list[int]]:
    """The batch's messages and the deliveries to drop (readers who left), settled before anything is sent.

    A fresh batch leaves out readers who left; dropping them before the send fixes what may reach the service.
    A batch taken back may have reached it already: an idempotent provider gets it again whole (a reader who
    left meanwhile included: at most that one message, which the service already has), so the request is
    byte-identical under the same key; ``None`` when that is impossible. Other providers leave leavers out.
    """
    whole = claim.reclaimed and run.provider.idempotent
    recipients = run.recipients.by_ids([subscriber for _, subscriber, _ in claim.rows], active_only=not whole)
    dropped = [delivery for delivery, subscriber, _ in claim.rows if subscriber not in recipients]
    if whole and dropped:
        return None, []
    return [personalise(run.prepared[cohort], recipients[subscriber], delivery_id=delivery, issue_number=run.number,
                        envelope=run.envelope, fill=not run.provider.fills_itself,
                        voter=run.recipients.voter_token(subscriber, run.number)
                        if "voter" in run.prepared[cohort].used else "")
            for delivery, subscriber, cohort in claim.rows if subscriber in recipients], dropped


def _pause(engine: Engine, number: int, error: str) -> None:
    with session_scope(engine) as session:
        issue = issues.get_issue(session, number)
        if issue.status == IssueStatus.SENDING:
            with contextlib.suppress(IssueStateError):  # an editor paused or cancelled it meanwhile
                issues.transition(issue, IssueStatus.PAUSED, error=error)


def _finish(engine: Engine, number: int) -> str:
    """Mark the issue sent once nothing is left queued (waves not due yet are queued); returns its status."""
    with session_scope(engine) as session:
        issue = issues.get_issue(session, number)
        assert issue.id is not None
        if deliveries.queued_left(engine, issue.id) == 0 and issue.status == IssueStatus.SENDING:
            with contextlib.suppress(IssueStateError):  # another sender finished it, or an editor paused it
                issues.transition(issue, IssueStatus.SENT)
        return issue.status
