"""Data rights, CSV moves and pauses, on both databases, through the CLI where an operator would use it."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from typer.testing import CliRunner

from newsletter.cli import app
from newsletter.errors import SubscriberError
from subscribers import privacy
from subscribers.models import Subscriber
from tests.conftest import TEST_SECRET_KEY as SECRET
from tests.newsletter.test_cli import env  # noqa: F401 - the configured CLI working folder
from tests.newsletter.test_issues import build, seed

runner = CliRunner()
CSV = """email,name,categories,status,consented_at
ann@example.org,Ann,Design;Writing,active,2025-03-01
bob@example.org,Bob,,active,
cy@example.org,,,unsubscribed,
"""


def rows(engine: Engine) -> dict[str, Subscriber]:
    with Session(engine) as session:
        return {r.email: r for r in session.exec(select(Subscriber))}


def test_csv_import_keeps_consent_rules_and_is_all_or_nothing(engine: Engine) -> None:
    report = privacy.import_csv(engine, CSV, secret=SECRET)
    found = rows(engine)
    assert (report.added, report.updated) == (3, 0)
    assert found["ann@example.org"].status == "active" and found["ann@example.org"].categories == "Design,Writing"
    assert found["bob@example.org"].status == "pending"  # active without proof of consent: must confirm
    assert found["cy@example.org"].status == "unsubscribed"
    assert report.pending == [found["bob@example.org"].id]
    with pytest.raises(SubscriberError, match="line 3: 'broken' is not a valid email address"):
        privacy.import_csv(engine, "email,status\nnew@example.org,active\nbroken,active\n", secret=SECRET)
    assert "new@example.org" not in rows(engine)
    exported = privacy.export_csv(engine)
    assert exported.splitlines()[0] == "email,name,categories,free_only,time_zone,status,consented_at,confirmed_at"
    assert "ann@example.org,Ann,\"Design,Writing\",,,active,2025-03-01T00:00:00+00:00," in exported


def test_csv_carries_the_time_zone_both_ways_and_refuses_an_unknown_one(engine: Engine) -> None:
    privacy.import_csv(engine, "email,time_zone,status\nann@example.org,Asia/Kathmandu,pending\n"
                               "bob@example.org,,pending\n", secret=SECRET)
    found = rows(engine)
    assert (found["ann@example.org"].time_zone, found["bob@example.org"].time_zone) == ("Asia/Kathmandu", None)
    exported = privacy.export_csv(engine)
    assert "ann@example.org,,,,Asia/Kathmandu,pending,," in exported
    privacy.import_csv(engine, exported, secret=SECRET)  # the export reads back as it was
    assert rows(engine)["ann@example.org"].time_zone == "Asia/Kathmandu"
    with pytest.raises(SubscriberError, match="line 3: time_zone: 'Asia/Atlantis' is not an IANA time zone name"):
        privacy.import_csv(engine, "email,time_zone\ncy@example.org,UTC\ndee@example.org,Asia/Atlantis\n",
                           secret=SECRET)
    assert "cy@example.org" not in rows(engine)  # all or nothing



def test_csv_import_stores_an_internationalised_domain_in_ascii(engine: Engine) -> None:
    privacy.import_csv(engine, "email,status\nuser@bücher.example,pending\n", secret=SECRET)
    report = privacy.import_csv(engine, "email,status\nuser@xn--bcher-kva.example,pending\n", secret=SECRET)
    assert list(rows(engine)) == ["user@xn--bcher-kva.example"] and report.updated == 1


def test_an_address_erased_in_its_unicode_form_stays_suppressed(engine: Engine) -> None:
    with Session(engine) as session:  # erased before domains were stored in ASCII: the hash is of the Unicode form
        session.add(Subscriber(email=privacy.erased_address("user@bücher.example", SECRET), status="unsubscribed",
                               erased=True, created_at=datetime(2026, 1, 5, tzinfo=UTC)))
        session.commit()
    report = privacy.import_csv(engine, "email,status\nuser@bücher.example,pending\n", secret=SECRET)
    assert report.skipped == 1 and report.added == 0

def test_export_then_forget_keeps_only_a_suppressing_hash(engine: Engine) -> None:
    directory = seed(engine)
    build(engine, directory)
    record = privacy.export_subscriber(engine, "all1@example.com")
    assert record["email"] == "all1@example.com" and record["status"] == "active"
    assert record["deliveries"][0]["status"] == "queued"
    json.dumps(record)  # JSON-ready
    privacy.forget(engine, "all1@example.com", secret=SECRET)
    found = rows(engine)
    assert "all1@example.com" not in found
    erased = found[privacy.erased_address("all1@example.com", SECRET)]
    assert erased.erased and erased.status == "unsubscribed" and erased.consent_ip is None
    report = privacy.import_csv(engine, "email,status,consented_at\nall1@example.com,active,2026-01-01\n", secret=SECRET)
    assert report.skipped == 1 and "all1@example.com" not in rows(engine)
    with pytest.raises(SubscriberError, match="no subscriber with the address"):
        privacy.export_subscriber(engine, "all1@example.com")


def test_paused_readers_skip_issues_then_come_back(engine: Engine) -> None:
    directory = seed(engine)
    with Session(engine) as session:
        row = session.exec(select(Subscriber).where(Subscriber.email == "all0@example.com")).one()
        row.pause_remaining = 1
        session.commit()
    outcome = build(engine, directory)
    assert outcome.queued == 9  # all0 skips this one
    assert rows(engine)["all0@example.com"].pause_remaining == 0
    assert "all0@example.com" in {r.address for r in directory.by_ids(list(range(1, 20))).values()}


def test_cli_export_forget_import(env: Path, engine: Engine) -> None:  # noqa: F811
    (env / "people.csv").write_text(CSV)
    result = runner.invoke(app, ["subscribers", "import", "people.csv"])
    assert result.exit_code == 0, result.output
    assert "3 added, 0 updated, 0 skipped" in result.output and "1 pending confirmation" in result.output
    sent = runner.invoke(app, ["subscribers", "import", "people.csv", "--send-confirmation"])
    assert sent.exit_code == 0 and "confirmation sent" in sent.output
    assert any("bob@example.org" in p.name for p in (env / "out").glob("*.eml"))
    shown = runner.invoke(app, ["subscribers", "export", "ann@example.org"])
    assert shown.exit_code == 0 and json.loads(shown.output)["name"] == "Ann"
    csv_out = runner.invoke(app, ["subscribers", "export", "--csv", "--out", "all.csv"])
    assert csv_out.exit_code == 0 and "ann@example.org" in (env / "all.csv").read_text()
    forgot = runner.invoke(app, ["subscribers", "forget", "ann@example.org"])
    assert forgot.exit_code == 0 and "Erased" in forgot.output
    gone = runner.invoke(app, ["subscribers", "export", "ann@example.org"])
    assert gone.exit_code == 1 and "no subscriber with the address" in gone.output


def test_csv_export_neutralises_formulas_and_import_takes_them_back(engine: Engine) -> None:
    names = ["=HYPERLINK(\"http://evil.example\",\"x\")", "+1", "-1", "@SUM(A1)", "\tTab", "\rReturn", "'quoted", "Ann"]
    with Session(engine) as session:
        for i, name in enumerate(names):
            session.add(Subscriber(email=f"r{i}@example.org", name=name, status="active", created_at=datetime.now(UTC)))
        session.add(Subscriber(email="=cmd@example.org", name="", status="active", created_at=datetime.now(UTC)))
        session.commit()
    exported = privacy.export_csv(engine)
    cells = [cell for line in csv.reader(io.StringIO(exported)) for cell in line]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")], cells
    assert "'=HYPERLINK(" in exported and "'=cmd@example.org" in exported and "'quoted" in exported
    with Session(engine) as session:
        for row in session.exec(select(Subscriber)):
            session.delete(row)
        session.commit()
    report = privacy.import_csv(engine, exported, secret=SECRET)
    assert report.added == len(names) + 1
    found = rows(engine)
    assert [found[f"r{i}@example.org"].name for i in range(len(names))] == names  # the round trip is exact
    assert "=cmd@example.org" in found


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.text(alphabet=st.sampled_from("'=+-@\t\rab, \""), max_size=8))
def test_cell_escaping_round_trips_and_never_starts_a_formula(value: str) -> None:
    escaped = privacy.escape_cell(value)
    assert escaped[:1] not in privacy.FORMULA_START
    assert privacy.unescape_cell(escaped) == value
