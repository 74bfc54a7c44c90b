"""The demo on a fresh folder: a whole week on SQLite, twice without duplicates."""

from __future__ import annotations

import email
import subprocess
import sys
from datetime import date
from email import policy
from pathlib import Path

from sqlmodel import Session, func, select

from newsletter import keycheck
from newsletter.db import make_engine
from newsletter.demo import demo_catalog, demo_settings, run_demo
from newsletter.models import ComparisonRow, DeliveryRow, IssueRow, ToolRow
from newsletter.values import Week
from subscribers.models import Subscriber


def count(db: Path, table: type) -> int:
    engine = make_engine(f"sqlite:///{db}")
    with Session(engine) as session:
        value = session.exec(select(func.count()).select_from(table)).one()
    engine.dispose()
    return int(value)


def test_bundled_catalog_lands_in_the_current_week_whatever_the_day() -> None:
    for today in (date(2026, 11, 23), date(2027, 3, 7), date(2030, 6, 12)):
        document = demo_catalog(today)
        dates = [date.fromisoformat(c["published"]) for c in document["comparisons"]]
        weeks = {Week.containing(d) for d in dates}
        assert max(dates) <= today and Week.containing(today) in weeks and len(weeks) == 3
        assert len(document["tools"]) >= 12 and len(document["comparisons"]) >= 8
        assert len({t["category"] for t in document["tools"]}) >= 3


def test_demo_runs_twice_and_duplicates_nothing(tmp_path: Path) -> None:
    first = run_demo(tmp_path / "demo")
    db = first.database
    assert first.number == 1 and first.written > 0 and not first.already_sent
    assert count(db, Subscriber) >= 50 and count(db, ToolRow) >= 12 and count(db, ComparisonRow) >= 8
    emls = sorted(first.outbox.glob("*.eml"))
    assert len(emls) == first.written == count(db, DeliveryRow)
    parsed = email.message_from_bytes(emls[0].read_bytes(), policy=policy.default)
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
    assert "<mj-" not in first.preview.read_text() and first.subject in first.preview.read_text()
    assert first.empty_cohorts or sum(n for _, n in first.cohorts) == count(db, Subscriber)
    second = run_demo(tmp_path / "demo")
    assert second.already_sent and second.number == 1
    assert len(list(second.outbox.glob("*.eml"))) == len(emls)
    assert (count(db, IssueRow), count(db, DeliveryRow), count(db, Subscriber)) == (1, len(emls), 54)


def test_demo_command_prints_what_it_did(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "newsletter", "demo", "--dir", str(tmp_path / "d")],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False)
    assert result.returncode == 0, result.stderr
    for expected in ("Issue 1:", "cohort all:", "Messages written:", "Outbox:", "preview.html"):
        assert expected in result.stdout


def test_demo_keeps_one_strong_key_and_replaces_a_weak_one(tmp_path: Path) -> None:
    first = demo_settings(tmp_path).require_secret()
    assert demo_settings(tmp_path).require_secret() == first  # kept in the folder: old demo links still verify
    (tmp_path / "secret.key").write_text("password12345678", encoding="utf-8")  # what older setups may hold
    replaced = demo_settings(tmp_path).require_secret()
    assert replaced != first and keycheck.weakness(replaced) is None
