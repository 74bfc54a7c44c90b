"""``newsletter issue stats N``: what readers did with an issue, as the desk shows it, in the terminal."""

from __future__ import annotations

import typer
from rich.table import Table

from newsletter import outage, wiring
from newsletter.cli_support import handled, load_settings, out
from subscribers.engagement import IssueEngagement, engagement


def register(issue_app: typer.Typer) -> None:
    """Add the ``stats`` command to ``newsletter issue``."""
    issue_app.command("stats")(handled(issue_stats))


def issue_stats(number: int) -> None:
    """Print issue N's clicks per comparison, click-through, votes per tool and unsubscribes after it."""
    settings = load_settings()
    with outage.reported(settings.database_url, advice="run it again once the database is back"), \
            wiring.build(settings) as wired:
        found = engagement(wired.engine, number)
    out.print(clicks_table(found))
    out.print(votes_table(found))
    out.print(summary_table(found))


def clicks_table(found: IssueEngagement) -> Table:
    """One row per comparison (and per other link): clicks, and unique readers where readers were tracked."""
    tracked = found.clicks.tracked
    grid = Table("Comparison", "Clicks", *(["Unique readers"] if tracked else []),
                 title=f"Issue {found.number}: clicks per comparison")
    for line in found.clicks.lines:
        grid.add_row(line.label, str(line.clicks), *([str(line.unique)] if tracked else []))
    if not found.clicks.lines:
        grid.add_row("(no links to the site)", "0", *(["0"] if tracked else []))
    return grid


def votes_table(found: IssueEngagement) -> Table:
    """One row per tool readers voted on from this issue's links: votes, ship votes and percent ship."""
    grid = Table("Comparison", "Tool", "Votes", "Ship", "Ship %", title=f"Issue {found.number}: reader votes")
    for line in found.votes:
        tally = line.tally
        grid.add_row(line.comparison, line.tool, str(tally.votes), str(tally.ship), f"{tally.ship_percent} %")
    if not found.votes:
        grid.add_row("(no votes from this issue yet)", "", "0", "0", "")
    return grid


def summary_table(found: IssueEngagement) -> Table:
    """The issue's totals: clicks, readers who clicked, submitted deliveries, click-through, unsubscribes."""
    grid = Table("Figure", "Value", title=f"Issue {found.number}: readers")
    grid.add_row("Clicks", str(found.clicks.clicks))
    grid.add_row("Readers who clicked", str(found.clicks.readers) if found.clicks.tracked else "not tracked")
    grid.add_row("Submitted", str(found.submitted))
    rate = found.click_through
    basis = "readers who clicked" if found.clicks.tracked else "clicks"
    grid.add_row("Click-through", f"{rate:.1f} % ({basis} / submitted)" if rate is not None else "nothing submitted")
    grid.add_row("Unsubscribed after it", str(found.unsubscribed))
    return grid
