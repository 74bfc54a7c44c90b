"""``newsletter issue reconcile N``: settle an issue's unknown outcomes from the provider's record now."""

from __future__ import annotations

import typer
from rich.table import Table

from newsletter import outage, reconcile, wiring
from newsletter.cli_support import handled, out
from newsletter.config import load_settings


def register(issue_app: typer.Typer) -> None:
    """Add the ``reconcile`` command to ``newsletter issue``."""
    issue_app.command("reconcile")(handled(issue_reconcile))


def issue_reconcile(number: int) -> None:
    """Ask the provider which of issue N's unknown outcomes it accepted; settle them and print what changed."""
    settings = load_settings()
    with outage.reported(settings.database_url, advice="run it again once the database is back"), \
            wiring.build(settings) as wired:
        provider = wired.provider()
        try:  # not opened as a context: only a provider that is asked something connects
            done = reconcile.reconcile_issue(wired.engine, number, provider=provider, recipients=wired.recipients,
                                             hours=settings.reconcile_hours, clock=wired.clock)
        finally:
            provider.close()
    out.print(table(done, provider.name, settings.reconcile_hours))
    if done.requeued:
        out.print(f"`newsletter issue send {number}` sends the {done.requeued} queued again (the scheduler does it "
                  "within a minute).")
    if done.unanswerable:
        out.print(f"{provider.name} cannot be searched: its webhooks settle these as their events arrive.")


def table(done: reconcile.Reconciled, provider: str, hours: float) -> Table:
    """What one reconciliation settled, one row per outcome."""
    grid = Table("Outcome", "Deliveries", "What it means", title=f"Issue {done.issue}, reconciled with {provider}")
    grid.add_row("submitted", str(done.accepted), "found at the provider")
    grid.add_row("queued again", str(done.requeued), "the provider surely never took them")
    grid.add_row("still unknown", str(done.waiting), "not found yet, within the provider's search delay")
    grid.add_row("cannot ask", str(done.unanswerable), "this provider has no search; webhooks may settle them")
    grid.add_row("left failed", str(done.expired), f"unknown for over {hours:g} h: the operator's call")
    return grid
