"""``newsletter subscribers …``: add, list, export, forget, import."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from newsletter import wiring
from newsletter.catalog import store as catalog_store
from newsletter.cli_support import group, handled, load_settings, out
from newsletter.db import session_scope
from subscribers import privacy
from subscribers import store as subscriber_store


def known_categories(asked: Sequence[str], known: Sequence[str]) -> tuple[str, ...]:
    """``asked`` in the catalog's own spelling (matched ignoring case), or BadParameter listing the known ones.

    A category no tool has matches nothing, so a reader added with a typo would silently get no issue at all.
    """
    spelled = {name.casefold(): name for name in known}
    unknown = [name for name in asked if name.casefold() not in spelled]
    if unknown:
        listed = ", ".join(known) if known else "none yet: import verdicts first (`newsletter import`)"
        raise typer.BadParameter(f"the catalog has no category {', '.join(map(repr, unknown))}; it knows: {listed}",
                                 param_hint="'--category'")
    return tuple(dict.fromkeys(spelled[name.casefold()] for name in asked))


subscribers_app = group("Add, list, export, erase and import subscribers.")


@subscribers_app.command("add")
@handled
def subscribers_add(
    emails: Annotated[list[str], typer.Argument(help="Addresses to add as active subscribers.")],
    category: Annotated[list[str] | None, typer.Option(help="Only this category (repeat for more).")] = None,
    free_only: Annotated[bool, typer.Option("--free-only", help="Only comparisons with a free tool.")] = False,
) -> None:
    """Add subscribers as active (operators vouch for their consent); addresses erased earlier stay out."""
    settings = load_settings()
    settings.require("secret_key")
    with wiring.build(settings) as wired, session_scope(wired.engine) as session:
        chosen = known_categories(category or (), catalog_store.tool_categories(session))
        outcome = subscriber_store.add_active(session, emails, categories=chosen, free_only=free_only,
                                              secret=settings.require_secret())
    for address, change in outcome:
        out.print(f"{change:>9}  {address}" + ("  (erased earlier: stays suppressed)" if change == "erased" else ""))


@subscribers_app.command("list")
@handled
def subscribers_list(
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    after: Annotated[int, typer.Option(help="Start after this id (keyset pagination).")] = 0,
    limit: Annotated[int, typer.Option(help="How many to show.")] = 100,
) -> None:
    """List subscribers with their preferences."""
    with wiring.build(load_settings()) as wired, session_scope(wired.engine) as session:
        rows = subscriber_store.page(session, after=after, limit=limit, status=status)
        counts = subscriber_store.count_by_status(session)
    table = Table("Id", "Email", "Status", "Categories", "Free only")
    for row in rows:
        table.add_row(str(row.id), row.email, row.status, row.categories or "all", "yes" if row.free_only else "")
    out.print(table)
    out.print(", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "No subscribers yet.")
    if len(rows) == limit:
        out.print(f"More: --after {rows[-1].id}")


@subscribers_app.command("export")
@handled
def subscribers_export(
    email: Annotated[str | None, typer.Argument(help="Print everything stored about this subscriber as JSON.")] = None,
    as_csv: Annotated[bool, typer.Option("--csv", help="All subscribers as CSV (the import's columns).")] = False,
    out_file: Annotated[Path | None, typer.Option("--out", help="Write to this file instead of printing.")] = None,
) -> None:
    """Export one subscriber's data (JSON) or everyone (CSV)."""
    if (email is None) == (not as_csv):
        raise typer.BadParameter("give either an EMAIL or --csv")
    with wiring.build(load_settings()) as wired:
        engine = wired.engine
        text = privacy.export_csv(engine) if as_csv else json.dumps(privacy.export_subscriber(engine, email or ""),
                                                                     indent=2, ensure_ascii=False) + "\n"
    if out_file:
        out_file.write_text(text, encoding="utf-8")
        out.print(f"Wrote {out_file}")
    else:
        typer.echo(text, nl=False)


@subscribers_app.command("forget")
@handled
def subscribers_forget(email: str) -> None:
    """Erase a subscriber's personal data, keeping only a salted hash so they are never mailed again."""
    settings = load_settings()
    settings.require("secret_key")
    with wiring.build(settings) as wired:
        privacy.forget(wired.engine, email, secret=settings.require_secret())
    out.print(f"Erased {email}; a salted hash keeps the address suppressed.")


@subscribers_app.command("import")
@handled
def subscribers_import(
    file: Path,
    send_confirmation: Annotated[bool, typer.Option("--send-confirmation",
                                                    help="Email a confirmation link to imported pending addresses.")
                                 ] = False,
) -> None:
    """Import subscribers from CSV (email, name, categories, status, consented_at); all rows or none."""
    settings = load_settings()
    settings.require("secret_key", *(("postal_address",) if send_confirmation else ()), provider=send_confirmation)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise typer.BadParameter(f"cannot read {file}: {exc}") from None
    with wiring.build(settings) as wired:
        engine = wired.engine
        report = privacy.import_csv(engine, text, secret=settings.require_secret(), source=file.name)
        pending = report.pending or []
        if send_confirmation and pending:
            from newsletter.web.site import Site

            site = Site.of(wired)
            for row in subscriber_store.by_ids(engine, pending):
                assert row.id is not None
                site.send_confirmation(row.id, row.email)
    out.print(f"{report.added} added, {report.updated} updated, {report.skipped} skipped (erased earlier); "
              f"{len(pending)} pending confirmation" + (", confirmation sent" if send_confirmation and pending else
                                                       "; --send-confirmation emails them a link"))
