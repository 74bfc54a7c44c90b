"""``newsletter votes …``: reader votes for the site to publish beside its Community figure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from newsletter import vote_figures, wiring
from newsletter.cli_support import err, group, handled, load_settings, out
from newsletter.db import session_scope

votes_app = group("Reader votes (Ship or Skip from the email).")


@votes_app.command("export")
@handled
def export(file: Annotated[Path, typer.Argument(help="Where to write the JSON (the same document as /votes.json).",
                                             metavar="FILE")],
           since: Annotated[str | None, typer.Option(help="Only votes last cast on or after this day, YYYY-MM-DD.")]
           = None) -> None:
    """Write reader votes per comparison and tool (votes, ship votes, percent ship): counts only, no reader."""
    try:
        start = vote_figures.day_start(since) if since else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from None
    with wiring.build(load_settings()) as wired, session_scope(wired.engine) as session:
        document = vote_figures.export(session, since=start, now=wired.clock.now())
    try:
        file.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        err.print(f"error: cannot write {file}: {exc.strerror or exc}")
        raise typer.Exit(1) from None
    tools = sum(len(c["tools"]) for c in document["comparisons"])
    out.print(f"Wrote {file}: {len(document['comparisons'])} comparison(s), {tools} tool(s) with reader votes")
