"""``newsletter votes export``: the same counts as /votes.json in a file, clear errors for bad dates and paths."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from newsletter.cli import app
from tests.newsletter.test_cli import env  # noqa: F401 - the configured CLI working folder
from tests.newsletter.test_vote_figures import cast
from tests.newsletter.vote_support import DESIGN

runner = CliRunner()


def test_export_writes_counts_per_comparison_and_tool(env: Path, engine: Engine) -> None:  # noqa: F811
    cast(engine, DESIGN, "ssk")
    result = runner.invoke(app, ["votes", "export", "votes.json"])
    assert result.exit_code == 0, result.output
    assert "1 comparison(s), 1 tool(s)" in result.output
    document = json.loads((env / "votes.json").read_text())
    assert document["comparisons"] == [{"comparison": DESIGN[0], "tools": [
        {"tool": DESIGN[1], "votes": 3, "ship": 2, "ship_percent": 67}]}]
    later = runner.invoke(app, ["votes", "export", "--since", "2999-01-01", "later.json"])
    assert later.exit_code == 0, later.output
    assert json.loads((env / "later.json").read_text())["comparisons"] == []


def test_bad_dates_and_paths_get_a_clear_error(env: Path, engine: Engine) -> None:  # noqa: F811
    bad = runner.invoke(app, ["votes", "export", "--since", "yesterday", "votes.json"])
    assert bad.exit_code == 2 and "write it as 2026-11-30" in " ".join(bad.output.split()), bad.output
    nowhere = runner.invoke(app, ["votes", "export", str(env / "no" / "such" / "folder" / "votes.json")])
    assert nowhere.exit_code == 1 and "cannot write" in nowhere.output and "Traceback" not in nowhere.output
    assert not (env / "votes.json").exists()
