"""The CLI end to end through typer's runner: commands, output, exit codes, clear errors."""

from __future__ import annotations

import email
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from email import policy
from pathlib import Path

import pytest
from typer.testing import CliRunner

from newsletter.cli import app
from tests.conftest import FIXTURE_PAGES, TEST_SECRET_KEY

runner = CliRunner()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str) -> Iterator[Path]:
    """A configured working folder on the test database."""
    monkeypatch.chdir(tmp_path)
    for name, value in {
        "DATABASE_URL": database_url, "SECRET_KEY": TEST_SECRET_KEY, "OUTBOX_DIR": str(tmp_path / "out"),
        "POSTAL_ADDRESS": "1 Test Street", "FROM_ADDRESS": "Verdicts <v@news.example.com>",
        "PUBLIC_URL": "https://app.example.com", "SITE_URL": "https://site.example.com/compare/",
    }.items():
        monkeypatch.setenv(f"NEWSLETTER_{name}", value)
    yield tmp_path


def run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_import_build_preview_send(env: Path) -> None:
    pages = [str(p) for p in sorted(FIXTURE_PAGES.glob("*.txt"))]
    assert "comparisons: 2 new" in run("import", *pages, "--published", "2026-11-18")
    run("subscribers", "add", "a@example.com", "b@example.com")
    run("subscribers", "add", "d@example.com", "--category", "Design", "--free-only")
    listing = run("subscribers", "list")
    assert "a@example.com" in listing and "Design" in listing and "3 active" in listing
    built = run("issue", "build", "--week", "2026-W47")
    assert "Built issue 1 for 2026-W47: Iconsmith vs Huewise, and 1 more verdict" in built
    assert "cohort free:Design: 1 subscriber(s)" in built and "3 deliveries queued" in built
    assert "already exists" in run("issue", "build", "--week", "2026-W47")
    run("issue", "preview", "1", "--out", "p.html")
    assert "<mj-" not in (env / "p.html").read_text() and "Lede" in (env / "p.html").read_text()
    run("issue", "preview", "1", "--out", "d.txt", "--text", "--subscriber", "d@example.com")
    assert "Lede" not in (env / "d.txt").read_text() and "Iconsmith" in (env / "d.txt").read_text()
    sent = run("issue", "send", "1")
    assert "Issue 1 is sent: 3 submitted, 0 rejected" in sent
    files = sorted((env / "out").glob("*.eml"))
    assert len(files) == 3
    parsed = email.message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    listing = run("issue", "list")
    assert "2026-W47" in listing and "│ sent" in listing and "Iconsmith" in listing


def test_export_writes_the_import_format(env: Path) -> None:
    run("import", str(FIXTURE_PAGES / "draftsmith-vs-lede.txt"), "--published", "2026-11-18")
    assert "Wrote 2 tools and 1 comparisons" in run("export", "catalog.json")
    document = json.loads((env / "catalog.json").read_text())
    assert document["format"] == "weekly-ai-tool-verdicts/1" and len(document["tools"]) == 2


def test_quiet_week_is_not_an_error(env: Path) -> None:
    assert "Quiet week 2026-W10" in run("issue", "build", "--week", "2026-W10")


@pytest.mark.parametrize(("args", "says"), [
    (["issue", "build", "--week", "2026-47"], "write it as 2026-W47"),
    (["import", "missing.json"], "missing.json: cannot read the file"),
    (["issue", "send", "4"], "there is no issue 4"),
    (["subscribers", "add", "nope"], "'nope' is not a valid email address"),
    (["import", "x.json", "--published", "yesterday"], "write YYYY-MM-DD"),
])
def test_bad_input_gets_a_clear_error(env: Path, args: list[str], says: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code != 0
    assert says in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output


def test_missing_settings_name_the_variable(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEWSLETTER_POSTAL_ADDRESS")
    run("import", str(FIXTURE_PAGES / "draftsmith-vs-lede.txt"), "--published", "2026-11-18")
    result = runner.invoke(app, ["issue", "build", "--week", "2026-W47"])
    assert result.exit_code == 1 and "NEWSLETTER_POSTAL_ADDRESS is not set" in result.output
    monkeypatch.setenv("NEWSLETTER_TIMEZONE", "Nowhere/City")
    result = runner.invoke(app, ["issue", "list"])
    assert result.exit_code == 1 and "NEWSLETTER_TIMEZONE" in result.output


def test_secret_prints_a_usable_key() -> None:
    key = run("secret").strip()
    assert len(key) >= 32


def test_dry_run_says_who_would_get_what_and_sends_nothing(env: Path) -> None:
    run("import", *[str(p) for p in sorted(FIXTURE_PAGES.glob("*.txt"))], "--published", "2026-11-18")
    run("subscribers", "add", "a@example.com", "b@example.com")
    run("subscribers", "add", "w@example.com", "--category", "Writing")
    run("issue", "build", "--week", "2026-W47")
    plan = run("issue", "send", "1", "--dry-run")
    assert "3 message(s) would go out; nothing was sent" in plan
    assert 'cohort all: 2 × "Iconsmith vs Huewise, and 1 more verdict"' in plan
    assert 'cohort Writing: 1 × "This week\'s verdict: Draftsmith vs Lede"' in plan and "w@example.com" in plan
    assert not (env / "out").exists()
    assert "Issue 1 is sent: 3 submitted" in run("issue", "send", "1")
    assert "0 message(s) would go out" in run("issue", "send", "1", "--dry-run")


def test_send_through_postmark_configured_by_environment(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.wire_server import KEY, WireServer

    with WireServer() as server:
        monkeypatch.setenv("NEWSLETTER_PROVIDER", "postmark")
        monkeypatch.setenv("NEWSLETTER_PROVIDER_BASE_URL", server.url)
        monkeypatch.setenv("NEWSLETTER_PROVIDER_API_KEY", KEY)
        run("import", str(FIXTURE_PAGES / "draftsmith-vs-lede.txt"), "--published", "2026-11-18")
        run("subscribers", "add", *[f"r{i}@example.com" for i in range(5)])
        server.state.inactive.add("r3@example.com")
        run("issue", "build", "--week", "2026-W47")
        sent = run("issue", "send", "1")
        assert "Issue 1 is sent: 4 submitted, 1 rejected, 0 failed" in sent
        assert "1 × postmark 406: Found inactive addresses: r3@example.com." in sent
        assert len(server.state.received) == 4
        assert "r3@example.com" not in run("subscribers", "list", "--status", "active")


def test_missing_api_key_is_named(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSLETTER_PROVIDER", "resend")
    run("import", str(FIXTURE_PAGES / "draftsmith-vs-lede.txt"), "--published", "2026-11-18")
    run("subscribers", "add", "a@example.com")
    run("issue", "build", "--week", "2026-W47")
    result = runner.invoke(app, ["issue", "send", "1"])
    assert result.exit_code == 1 and "NEWSLETTER_PROVIDER_API_KEY is not set" in result.output


def test_retry_failed_reopens_a_sent_issue_for_its_failures_only(env: Path, database_url: str) -> None:
    from sqlalchemy import update

    from newsletter.db import make_engine
    from newsletter.deliveries import TABLE

    run("import", *[str(p) for p in sorted(FIXTURE_PAGES.glob("*.txt"))], "--published", "2026-11-18")
    run("subscribers", "add", "a@example.com", "b@example.com")
    run("issue", "build", "--week", "2026-W47")
    run("issue", "send", "1")
    engine = make_engine(database_url)
    with engine.begin() as connection:
        connection.execute(update(TABLE).where(TABLE.c.subscriber_id == 1).values(
            status="failed", reason="outcome unknown: no answer came"))
    engine.dispose()
    run("subscribers", "add", "late@example.com")  # joined after the send: must not get last week's issue
    retried = run("issue", "send", "1", "--retry-failed")
    assert "Queued 1 failed deliveries again." in retried and "Issue 1 is sent: 1 submitted" in retried
    again = runner.invoke(app, ["issue", "send", "1"])
    assert again.exit_code == 1 and "issue 1 is sent; it cannot become sending" in again.output
    assert "submitted ·" not in again.output  # refused before a progress bar is drawn for nothing
    assert not list((env / "out").glob("*late@example.com.eml"))


def test_catalog_text_is_printed_as_text_not_rich_markup(env: Path) -> None:
    from tests.newsletter.catalog.test_json_format import minimal

    document = minimal()
    document["tools"][0]["category"] = "[bold]Writing"
    document["comparisons"][0]["title"] = "Alpha [/bold] vs Beta [red]"
    (env / "catalog.json").write_text(json.dumps(document), encoding="utf-8")
    run("import", "catalog.json")
    run("subscribers", "add", "a@example.com", "--category", "[bold]Writing")
    built = run("issue", "build", "--week", "2026-W47")
    assert "Built issue 1 for 2026-W47: This week's verdict: Alpha [/bold] vs Beta [red]" in built
    assert "cohort [bold]Writing: 1 subscriber(s)" in built
    listing = run("issue", "list")
    assert "│ draft" in listing and "[/bold] vs Beta [red]" in listing  # the table wraps the subject


def test_errors_quoting_catalog_text_are_printed_as_text(env: Path) -> None:
    page = (FIXTURE_PAGES / "draftsmith-vs-lede.txt").read_text().replace("\nDraftsmith\n", "\nDraft[/bold]\x0bsmith\n", 1)
    (env / "page.txt").write_text(page, encoding="utf-8")
    for args, says in ((["import", "page.txt"], "Draft[/bold]"), (["import", "[/red].json"], "[/red].json: cannot read")):
        result = runner.invoke(app, args)
        assert result.exit_code == 1 and says in result.output, result.output
        assert "Traceback" not in result.output


def test_build_and_send_refuse_an_issue_gmail_would_clip(env: Path, monkeypatch: pytest.MonkeyPatch,
                                                         database_url: str) -> None:
    from sqlalchemy import update

    from newsletter.db import make_engine
    from newsletter.models import IssueCohortRow
    from tests.catalogs import many, write

    run("import", str(write(env / "week.json", many(20, date(2026, 11, 18)))))
    run("subscribers", "add", "a@example.com")
    monkeypatch.setenv("NEWSLETTER_DIGEST_LIMIT", "20")
    result = runner.invoke(app, ["issue", "build", "--week", "2026-W47"])
    said = " ".join(result.output.split())
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert "this issue would be clipped:" in said and "Gmail clips anything over 102 KB" in said
    assert "drop comparisons on the desk or lower NEWSLETTER_DIGEST_LIMIT" in said
    assert "No issues yet" in run("issue", "list")
    monkeypatch.setenv("NEWSLETTER_DIGEST_LIMIT", "8")
    assert "Built issue 1" in run("issue", "build", "--week", "2026-W47")
    engine = make_engine(database_url)  # an issue built before sizes were checked at build time
    with engine.begin() as conn:
        conn.execute(update(IssueCohortRow).values(html=IssueCohortRow.html + "<p>" + "padding " * 14000 + "</p>"))
    engine.dispose()
    for command in (["issue", "send", "1"], ["issue", "send", "1", "--dry-run"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 1 and "Gmail clips anything over 102 KB" in result.output, result.output
    assert not (env / "out").exists()


def test_a_send_run_by_hand_logs_in_the_configured_format_and_level(env: Path, monkeypatch: pytest.MonkeyPatch
                                                                    ) -> None:
    run("import", str(FIXTURE_PAGES / "draftsmith-vs-lede.txt"), "--published", "2026-11-18")
    run("subscribers", "add", "a@example.com", "b@example.com")
    run("issue", "build", "--week", "2026-W47")
    monkeypatch.setenv("NEWSLETTER_LOG_FORMAT", "json")
    result = runner.invoke(app, ["issue", "send", "1"])
    assert result.exit_code == 0, result.output
    [line] = [json.loads(text) for text in result.stderr.splitlines() if text.startswith("{")]
    assert line["logger"] == "newsletter.cli" and line["msg"] == "issue send ended"
    assert (line["issue"], line["status"], line["submitted"]) == (1, "sent", 2)
    monkeypatch.setenv("NEWSLETTER_LOG_LEVEL", "WARNING")
    quiet = runner.invoke(app, ["issue", "send", "1", "--dry-run"])
    assert quiet.exit_code == 0 and "issue send" not in quiet.stderr


def test_a_category_the_catalog_does_not_know_is_refused_with_the_known_ones(env: Path) -> None:
    run("import", *[str(p) for p in sorted(FIXTURE_PAGES.glob("*.txt"))], "--published", "2026-11-18")
    refused = runner.invoke(app, ["subscribers", "add", "a@example.com", "--category", "Desgin"])
    said = " ".join(refused.output.split())
    assert refused.exit_code == 2 and "the catalog has no category 'Desgin'; it knows: Design, Writing" in said, said
    assert "No subscribers yet" in run("subscribers", "list")
    assert "added  a@example.com" in run("subscribers", "add", "a@example.com", "--category", "design")
    assert "│ Design " in run("subscribers", "list")  # stored in the catalog's spelling


def test_an_empty_catalog_knows_no_category_and_says_what_to_do(env: Path) -> None:
    refused = runner.invoke(app, ["subscribers", "add", "a@example.com", "--category", "Design"])
    assert refused.exit_code == 2 and "none yet: import verdicts first" in " ".join(refused.output.split())


def test_output_to_a_file_is_not_wrapped(env: Path) -> None:
    address = f"{'a-very-long-local-part-' * 4}reader@example.com"
    run("subscribers", "add", address)
    with (env / "list.txt").open("w") as listing:
        done = subprocess.run([sys.executable, "-m", "newsletter", "subscribers", "list"], stdout=listing,
                              stderr=subprocess.PIPE, text=True, env=os.environ | {"COLUMNS": "40"}, check=False)
    assert done.returncode == 0, done.stderr
    rows = [line for line in (env / "list.txt").read_text().splitlines() if address in line]
    assert len(rows) == 1 and len(rows[0]) > 100 and "active" in rows[0]


@pytest.mark.parametrize(("command", "shown", "hidden"), [
    ([], ["Usage:", "Commands:", "issue", "subscribers", "db"], ["<bool>", "╭"]),
    (["issue", "send", "--help"], ["--dry-run ", "--retry-failed ", "number <int>  [required]"], ["<bool>", "╭"]),
    (["serve", "--help"], ["--port <int>", "[default: 8000]", "--host <str>", "[default: 127.0.0.1]"], ["<bool>"]),
    (["subscribers", "add", "--help"], ["--category <list[str]>", "--free-only "], ["<bool>"]),
    (["issue", "build", "--help"], ["--week <str>", "ISO week"], ["<bool>"]),
])
def test_help_shows_each_option_with_its_type_and_default_and_flags_bare(command: list[str], shown: list[str],
                                                                          hidden: list[str]) -> None:
    result = runner.invoke(app, command or ["--help"])
    assert result.exit_code == 0, result.output
    for text in shown:
        assert text in result.output, (text, result.output)
    for text in hidden:
        assert text not in result.output, (text, result.output)


def test_issue_reconcile_prints_what_it_settled(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.wire_server import KEY, Fault, WireServer

    with WireServer() as server:
        for name, value in {"PROVIDER": "postmark", "PROVIDER_BASE_URL": server.url, "PROVIDER_API_KEY": KEY,
                            "REQUEST_TIMEOUT": "1.5"}.items():
            monkeypatch.setenv(f"NEWSLETTER_{name}", value)
        run("import", str(FIXTURE_PAGES / "draftsmith-vs-lede.txt"), "--published", "2026-11-18")
        run("subscribers", "add", *[f"r{i}@example.com" for i in range(3)])
        run("issue", "build", "--week", "2026-W47")
        server.state.faults.append(Fault(delay=4.0))
        assert "3 failed" in run("issue", "send", "1")
        table = run("issue", "reconcile", "1")
        assert "Issue 1, reconciled with postmark" in table
        assert re.search(r"submitted\s*│\s*3\s*│\s*found at the provider", table), table
        assert re.search(r"queued again\s*│\s*0", table), table
        assert len(server.state.received) == 3
