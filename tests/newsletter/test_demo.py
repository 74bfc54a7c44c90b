"""The demo on a fresh folder: a whole week on SQLite, twice without duplicates."""

from __future__ import annotations

import email
import html as html_module
import os
import re
import subprocess
import sys
import time
from datetime import date
from email import policy
from pathlib import Path

import httpx
import pytest
from dotenv import dotenv_values
from sqlmodel import Session, func, select

from newsletter import keycheck
from newsletter.db import make_engine
from newsletter.demo import demo_catalog, demo_settings, run_demo
from newsletter.errors import NewsletterError
from newsletter.models import ComparisonRow, DeliveryRow, IssueRow, ToolRow
from newsletter.values import Week
from newsletter.web.site import mask
from subscribers.models import Subscriber
from tests.newsletter.web.helpers import free_port


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
    for expected in ("Issue 1:", "cohort all:", "Messages written:", "Outbox:", "preview.html", "Settings:",
                     f"cd {tmp_path / 'd'} && newsletter serve", "http://127.0.0.1:8000/archive/1"):
        assert expected in result.stdout
    assert "created the database schema at revision" in result.stderr


def test_demo_keeps_one_strong_key_and_replaces_a_weak_one(tmp_path: Path) -> None:
    first = demo_settings(tmp_path).require_secret()
    assert demo_settings(tmp_path).require_secret() == first  # kept in the folder: old demo links still verify
    assert dotenv_values(tmp_path / ".env")["NEWSLETTER_SECRET_KEY"] == first
    (tmp_path / ".env").unlink()
    (tmp_path / "secret.key").write_text(first, encoding="utf-8")  # where older versions kept it
    assert demo_settings(tmp_path).require_secret() == first
    (tmp_path / ".env").unlink()
    (tmp_path / "secret.key").write_text("password12345678", encoding="utf-8")  # what older setups may hold
    replaced = demo_settings(tmp_path).require_secret()
    assert replaced != first and keycheck.weakness(replaced) is None


def test_demo_never_overwrites_an_env_file_it_did_not_write(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("NEWSLETTER_SECRET_KEY=the-operators-own\n", encoding="utf-8")
    with pytest.raises(NewsletterError, match="was not written by the demo"):
        run_demo(tmp_path)
    assert (tmp_path / ".env").read_text(encoding="utf-8") == "NEWSLETTER_SECRET_KEY=the-operators-own\n"


def demo_links(outbox: Path) -> tuple[str, dict[str, str]]:
    """The reader and the preferences, unsubscribe and web-version links of one email the demo wrote."""
    parsed = email.message_from_bytes(sorted(outbox.glob("*.eml"))[0].read_bytes(), policy=policy.default)
    html = parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]
    hrefs = set(re.findall(r'href="(http://127\.0\.0\.1:8000/[^"]+)"', html))
    links = {kind: next(h for h in hrefs if f"/{kind}" in h) for kind in ("preferences/", "unsubscribe/", "archive/")}
    assert parsed["List-Unsubscribe"].startswith("<http://127.0.0.1:8000/unsubscribe/")
    return str(parsed["To"]), links


def test_the_served_demo_opens_every_link_of_its_email(tmp_path: Path) -> None:
    """`newsletter demo`, then `newsletter serve` in its folder, as the quick start says: the links work."""
    folder = tmp_path / "demo"
    report = run_demo(folder)
    run_demo(folder)  # a second run keeps the key the email links were signed with
    reader, links = demo_links(report.outbox)
    port = free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("NEWSLETTER_")}
    with (tmp_path / "serve.log").open("wb") as log:
        server = subprocess.Popen([sys.executable, "-m", "newsletter", "serve", "--port", str(port)], env=env,
                                  cwd=folder, stdout=log, stderr=subprocess.STDOUT)
    try:
        pages = {kind: _get(link.replace(":8000/", f":{port}/"), server, tmp_path / "serve.log")
                 for kind, link in links.items()}
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert all(page.status_code == 200 for page in pages.values()), {k: p.status_code for k, p in pages.items()}
    assert reader in pages["preferences/"].text
    assert mask(reader) in pages["unsubscribe/"].text
    assert report.subject in html_module.unescape(pages["archive/"].text)
    engine = make_engine(f"sqlite:///{report.database}")
    with Session(engine) as session:  # looking unsubscribed no one
        assert {s.status for s in session.exec(select(Subscriber))} == {"active"}
    engine.dispose()


def _get(url: str, server: subprocess.Popen[bytes], log: Path) -> httpx.Response:
    deadline = time.monotonic() + 30
    while True:
        try:
            return httpx.get(url, timeout=5)
        except httpx.TransportError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(log.read_text(encoding="utf-8")) from None
            time.sleep(0.2)
