"""``newsletter …``: parse input, wire (``wiring.build``), delegate. Behaviour lives in publishing, catalog, issues and
dispatch."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from newsletter import issues, maintenance, metrics, migrate, outage, publishing, wiring
from newsletter.catalog.importer import export_file, import_files
from newsletter.cli_doctor import register as register_doctor
from newsletter.cli_editors import editor_app
from newsletter.cli_reconcile import register as register_reconcile
from newsletter.cli_stats import register as register_stats
from newsletter.cli_subscribers import subscribers_app
from newsletter.cli_support import group, handled, load_settings, out
from newsletter.cli_votes import votes_app
from newsletter.config import Settings, new_secret
from newsletter.db import session_scope
from newsletter.demo import DEMO_URL, run_demo
from newsletter.dispatch import SendReport, send_issue
from newsletter.statuses import IssueStatus
from newsletter.values import Week
from subscribers.figures import wave_lines

app = group("Weekly AI Tool Verdicts: import verdicts, build the weekly issue, send it.", add_completion=False,
            pretty_exceptions_enable=False)
issue_app = group("Build, list, preview and send issues.")
app.add_typer(issue_app, name="issue")
app.add_typer(subscribers_app, name="subscribers")
app.add_typer(editor_app, name="editor")
app.add_typer(votes_app, name="votes")
register_doctor(app)
register_reconcile(issue_app)
register_stats(issue_app)
log = logging.getLogger("newsletter.cli")


def _parse_date(text: str | None) -> date:
    if text is None:
        return date.today()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date; write YYYY-MM-DD") from None


def _parse_week(text: str | None, settings: Settings) -> Week:
    if text is None:
        return Week.current(settings.zone)
    try:
        return Week.parse(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


@app.command("import")
@handled
def import_(
    files: Annotated[list[Path], typer.Argument(help="JSON catalogs or comparison pages (plain text).")],
    published: Annotated[str | None, typer.Option(help="Date for comparison pages, YYYY-MM-DD (default: today).")
                         ] = None,
) -> None:
    """Import verdicts: every file or none."""
    day = _parse_date(published)
    with wiring.build(load_settings()) as wired:
        summary = import_files(wired.engine, files, published=day)
    out.print(f"Imported {len(files)} file(s). {summary.describe()}")


@app.command()
@handled
def export(file: Annotated[Path, typer.Argument(help="Where to write the catalog (JSON import format).")]) -> None:
    """Export the whole catalog in the import format."""
    with wiring.build(load_settings()) as wired:
        tools, comparisons = export_file(wired.engine, file)
    out.print(f"Wrote {tools} tools and {comparisons} comparisons to {file}")


@issue_app.command("build")
@handled
def issue_build(week: Annotated[str | None, typer.Option(help="ISO week, e.g. 2026-W47 (default: this week).")] = None
                ) -> None:
    """Build the week's issue (once; building again shows the existing one)."""
    settings = load_settings()
    settings.require("secret_key", "postal_address")
    target = _parse_week(week, settings)
    with wiring.build(settings) as wired:
        outcome = publishing.build_issue(wired.engine, week=target, renderer=wired.renderer)
    if outcome.quiet:
        out.print(f"Quiet week {outcome.week}: no new comparison and no new tool, so no issue was built.")
    elif not outcome.created:
        out.print(f"Issue {outcome.number} for {outcome.week} already exists: {outcome.subject}")
    else:
        out.print(f"Built issue {outcome.number} for {outcome.week}: {outcome.subject}")
        for key, size in outcome.cohorts:
            out.print(f"  cohort {key}: {size} subscriber(s)")
        for key in outcome.empty_cohorts:
            out.print(f"  cohort {key}: nothing this week matches, so they receive nothing")
        out.print(f"  {outcome.queued} deliveries queued")


@issue_app.command("list")
@handled
def issue_list() -> None:
    """List issues with status and delivery counts, and the waves of those being sent: gone, sending, ahead."""
    settings = load_settings()
    with wiring.build(settings) as wired:
        with session_scope(wired.engine) as session:
            summaries = issues.list_issues(session)
        table = Table("No.", "Week", "Status", "Subject", "Cohorts", "Deliveries")
        for s in summaries:
            counts = ", ".join(f"{n} {status}" for status, n in sorted(s.deliveries.items())) or "none"
            table.add_row(str(s.number), s.week, s.status, s.subject, str(s.cohorts), counts)
        out.print(table if summaries else "No issues yet: `newsletter issue build` makes this week's.")
        for s in (s for s in summaries if s.status in ("sending", "paused")):
            for _state, line in _waves(wired, s.number):
                out.print(f"Issue {s.number} wave {line}")


def _waves(wired: wiring.Wiring, number: int) -> list[tuple[str, str]]:
    settings = wired.settings
    return wave_lines(wired.engine, number, local=settings.local_delivery, zone=settings.zone, now=wired.clock.now())


@issue_app.command("preview")
@handled
def issue_preview(
    number: int,
    out_file: Annotated[Path, typer.Option("--out", help="File to write.")],
    text: Annotated[bool, typer.Option("--text", help="Write the text version instead of HTML.")] = False,
    subscriber: Annotated[str | None, typer.Option(help="Preview as this subscriber gets it.")] = None,
) -> None:
    """Write an issue's HTML (or text) as a reader, or one subscriber, gets it."""
    settings = load_settings()
    settings.require(*(("secret_key",) if subscriber else ()))
    with wiring.build(settings) as wired:
        recipients = wired.recipients if subscriber else None
        rendered, html, plain = publishing.preview(wired.engine, number, envelope=wired.envelope,
                                                   recipients=recipients, address=subscriber)
    out_file.write_text(plain if text else html, encoding="utf-8")
    out.print(f"Wrote {'text' if text else 'HTML'} of issue {number} (cohort {rendered.cohort_key}) to {out_file}")


@issue_app.command("send")
@handled
def issue_send(
    number: int,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would go out to whom, per cohort; send nothing.")
                       ] = False,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Queue deliveries that failed before.")
                            ] = False,
) -> None:
    """Send an issue to every queued delivery with a progress bar; run again to resume."""
    settings = load_settings()
    settings.require("secret_key", provider=not dry_run and not settings.send_with_workers)
    advice = f"run `newsletter issue send {number}` again once it is back"
    with outage.reported(settings.database_url, advice=advice), wiring.build(settings) as wired:
        publishing.refuse_oversized(wired.engine, number)  # a clipped email is not worth sending; say what to cut
        if dry_run:
            _print_plan(publishing.plan_send(wired.engine, number, recipients=wired.recipients), settings)
            return
        reopened = False
        if retry_failed:
            count, reopened = maintenance.requeue(wired.engine, number)
            out.print(f"Queued {count} failed deliveries again.")
        if settings.send_with_workers:
            from newsletter.worker import hand_to_workers

            queued = hand_to_workers(wired.engine, number, recipients=wired.recipients,
                                     local=wired.send_options.local, clock=wired.clock,
                                     size=wired.send_options.batch_size)
            out.print(f"Issue {number} is sending: {queued} deliveries queued for `newsletter worker` processes.")
            return
        # A sent issue reopened for its failures goes to them alone, not to readers who joined since.
        report = _send_with_progress(wired, number, top_up=not reopened)
        ahead = [line for state, line in _waves(wired, number) if state == "ahead"]
    log.info("issue send ended", extra={"issue": number, "status": report.status, "submitted": report.submitted,
                                        "rejected": report.rejected, "failed": report.failed})
    out.print(f"Issue {number} is {report.status}: {report.submitted} submitted, {report.rejected} rejected, "
              f"{report.failed} failed, {report.dropped} dropped (no longer active), "
              f"{report.rate:.0f} messages/s.")
    for reason, count in sorted(report.reasons.items()):
        out.print(f"  {count} × {reason}")
    if ahead:
        out.print("Waves still ahead (the scheduler's minute job or the workers send each as it comes due):")
        for line in ahead:
            out.print(f"  {line}")
    if report.failed:
        out.print(f"Failed deliveries were not sent again automatically; see the README's timeout policy. "
                  f"`newsletter issue send {number} --retry-failed` queues them again.")


def _print_plan(plan: list[publishing.PlannedCohort], settings: Settings) -> None:
    total = sum(len(cohort.addresses) for cohort in plan)
    out.print(f"Dry run with provider {settings.provider}: {total} message(s) would go out; nothing was sent.")
    for cohort in plan:
        out.print(f"  cohort {cohort.key}: {len(cohort.addresses)} × \"{cohort.subject}\"")
        shown = cohort.addresses[:20]
        for address in shown:
            out.print(f"    {address}")
        if len(cohort.addresses) > len(shown):
            out.print(f"    … and {len(cohort.addresses) - len(shown)} more")


def _send_with_progress(wired: wiring.Wiring, number: int, *, top_up: bool = True) -> SendReport:
    with session_scope(wired.engine) as session:
        issue = issues.get_issue(session, number)
        issues.may_become(issue, IssueStatus.SENDING)  # said before a progress bar is drawn for nothing
        counts = issues.delivery_counts(session, issue.id)
    total = counts.get("queued", 0) or None
    columns = (TextColumn("[bold]issue {task.fields[number]}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[submitted]} submitted · {task.fields[rejected]} rejected · "
                          "{task.fields[failed]} failed · {task.fields[rate]:.0f}/s"), TimeRemainingColumn())
    with Progress(*columns, console=out) as bar:
        task = bar.add_task("send", total=total, number=number, submitted=0, rejected=0, failed=0, rate=0.0)

        def progress(report: SendReport) -> None:
            bar.update(task, completed=report.done, submitted=report.submitted, rejected=report.rejected,
                       failed=report.failed, rate=report.rate)

        return send_issue(wired.engine, number, provider=wired.provider(), sending=wired.sending, progress=progress,
                          top_up=top_up, clock=wired.clock)


@app.command()
@handled
def demo(directory: Annotated[Path, typer.Option("--dir", help="Where the demo keeps everything.")] = Path("demo")
         ) -> None:
    """Run a whole week on SQLite with the file provider: no server, no account."""
    report = run_demo(directory)
    out.print(f"Issue {report.number}: {report.subject}")
    for key, size in report.cohorts:
        out.print(f"  cohort {key}: {size} subscriber(s)")
    for key, size in report.empty_cohorts:
        out.print(f"  cohort {key}: {size} subscriber(s) get nothing: no comparison this week matches")
    if report.already_sent:
        out.print("Already sent on an earlier run: nothing new written.")
    else:
        out.print(f"Messages written: {report.written}")
    out.print(f"Outbox:   {report.outbox}/\nPreview:  {report.preview}\nDatabase: {report.database}\n"
              f"Settings: {report.env_file}")
    out.print(f"Serve the pages its links open: {report.serve_command}\n"
              f"  then open {DEMO_URL}/archive/{report.number}, or any link in an .eml of the outbox")


db_app = group("Database schema migrations.")
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
@handled
def db_upgrade() -> None:
    """Apply every pending migration to NEWSLETTER_DATABASE_URL."""
    with wiring.build(load_settings(), check_schema=False) as wired:
        before, after = migrate.upgrade(wired.engine)
    was = "up to date" if before == after else f"was {before or 'empty'}"
    out.print(f"Schema at revision {after} ({was})")


@db_app.command("status")
@handled
def db_status() -> None:
    """Say whether the schema is current; exit status 1 when it is missing or behind (for deploy scripts)."""
    with wiring.build(load_settings(), check_schema=False) as wired:
        engine = wired.engine
        state = migrate.state(engine)
        out.print(f"Schema: {state} (database at {migrate.current(engine) or 'nothing'}, code at {migrate.head()})")
    if state != "current":
        out.print("Run `newsletter db upgrade` to bring it to the code's revision.")
        raise typer.Exit(1)


@app.command()
@handled
def serve(host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
          workers: Annotated[int, typer.Option(help="uvicorn worker processes (use PostgreSQL for more than 1).")
                             ] = 1) -> None:
    """Serve the subscriber pages and webhooks with uvicorn."""
    import uvicorn

    from newsletter.web.access_log import log_config

    settings = load_settings()
    settings.require("secret_key", "postal_address", provider=True)  # confirmation emails carry both
    with wiring.build(settings) as wired:
        _ = wired.engine  # set up a new database, or refuse to start on an out-of-date schema
    # uvicorn would otherwise believe X-Forwarded-For from 127.0.0.1 (or $FORWARDED_ALLOW_IPS); the app reads it
    # itself, from NEWSLETTER_TRUSTED_PROXIES only, so that every server and test sees one rule.
    access = log_config()  # the access log never holds a subscriber's token
    metrics.prepare_web(workers)  # uvicorn workers share one metrics directory, so /metrics sums them all
    if workers > 1:
        uvicorn.run("newsletter.web.app:app_from_environment", factory=True, host=host, port=port, workers=workers,
                    proxy_headers=False, log_config=access)
        return
    from newsletter.web.app import create_app, served

    uvicorn.run(served(create_app(settings)), host=host, port=port, proxy_headers=False, log_config=access)


@app.command()
@handled
def worker(concurrency: Annotated[int | None, typer.Option(help="Batches in flight in this process "
                                                                   "(default NEWSLETTER_CONCURRENCY).")] = None
           ) -> None:
    """Send queued deliveries of issues being sent, until SIGTERM; run as many as you like."""
    import signal
    import threading

    from newsletter import heartbeat
    from newsletter import worker as work

    settings = load_settings()  # logs at NEWSLETTER_LOG_LEVEL, without every HTTP request of the libraries
    settings.require("secret_key", provider=True)
    metrics.expose(settings)  # /metrics on NEWSLETTER_METRICS_PORT, when set
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with outage.reported(settings.database_url, advice="start the worker again once it is back"), \
            wiring.build(settings) as wired, \
            heartbeat.beating(wired.engine, every=settings.heartbeat_seconds):  # outages: newsletter.worker
        sending = wired.sending
        if concurrency:
            sending = replace(sending, options=replace(sending.options, concurrency=concurrency))
        out.print(f"Worker sending with {settings.provider}, {sending.options.concurrency} batch(es) in flight")
        log.info("worker started", extra={"provider": settings.provider, "concurrency": sending.options.concurrency})
        submitted = work.run(wired.engine, provider=wired.provider, sending=sending, stop=stop,
                             poll=settings.worker_poll_seconds, retry_cap=settings.database_retry_seconds,
                             clock=wired.clock)
    log.info("worker stopped", extra={"submitted": submitted})
    out.print(f"Worker stopped after submitting {submitted} message(s).")


@app.command("scheduler")
@handled
def run_scheduler() -> None:
    """Run the weekly publishing schedule in the foreground (same as `python scheduler.py`)."""
    import scheduler

    scheduler.main()


@app.command()
def secret() -> None:
    """Print a fresh value for NEWSLETTER_SECRET_KEY."""
    out.print(new_secret())


def main() -> None:
    """Console-script entry point."""
    app()
