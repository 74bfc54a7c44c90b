"""``newsletter doctor``: every check of the installation as a table (or ``--json``); exit status 1 on any failure."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Column, Table
from rich.text import Text

from newsletter import wiring
from newsletter.cli_support import handled, load_settings, out

if TYPE_CHECKING:
    from newsletter.doctor.findings import Finding

STYLES = {"pass": ("pass", "bold green"), "warn": ("warn", "bold yellow"), "fail": ("FAIL", "bold red"),
          "skip": ("n/a", "dim")}


def register(app: typer.Typer) -> None:
    """Add ``doctor`` to the CLI."""
    app.command("doctor")(doctor_command)


@handled
def doctor_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print the findings as JSON, for machines.")] = False,
    nameserver: Annotated[str | None, typer.Option(help="Ask this DNS server (host or host:port) instead of the "
                                                        "system's resolver, e.g. your zone's authoritative one.")
                          ] = None,
) -> None:
    """Check DNS, URLs, provider credentials, webhooks, database, scheduler and workers; say what to fix."""
    from newsletter import doctor  # here, not at the top: dnspython is for this command only, not every worker

    settings = load_settings()
    with wiring.build(settings, check_schema=False) as wired:  # an old schema is a finding, not a refusal
        findings = doctor.run_checks(doctor.Context(wired, doctor.resolver_for(nameserver)))
    tally = doctor.counts(findings)
    if as_json:
        typer.echo(json.dumps({"ok": tally["fail"] == 0, "counts": tally,
                               "findings": [f.as_dict() for f in findings]}, indent=2))
    else:
        out.print(table(findings))
        out.print(f"{tally['pass']} passed, {tally['warn']} warning(s), {tally['fail']} failed, "
                  f"{tally['skip']} not applicable")
    if tally["fail"]:
        raise typer.Exit(1)


def table(findings: list[Finding]) -> Table:
    """The findings as a rich table: check, result, what was found, the fix."""
    # Long words (URLs, setting names) fold onto the next line instead of ending in "…": the name to fix must show.
    grid = Table("Check", "Result", Column("Detail", overflow="fold"), Column("Fix", overflow="fold"),
                 show_lines=False)
    for finding in findings:
        label, style = STYLES[finding.status]
        grid.add_row(finding.name, Text(label, style=style), finding.detail, finding.fix)
    return grid
