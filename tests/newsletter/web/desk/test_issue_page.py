"""The editor's desk over HTTP: sign-in, the issues list, the issue page, edits, tests, approval (both databases)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from newsletter import editors, issues
from newsletter.clicks.links import find_link
from newsletter.config import Settings
from newsletter.db import session_scope
from newsletter.providers.memory import MemoryProvider
from newsletter.web.desk.auth import Gate
from newsletter.web.site import Site
from tests.newsletter.test_issues import build, seed
from tests.newsletter.web.helpers import running

PASSWORD = "correct horse battery"
FAST = editors.Cost(2**10, 8, 1)  # the desk's tests hash at a low cost; test_editors checks the real one


def fast_gate(site: Site) -> Gate:
    return Gate(site, cost=FAST)
Client = tuple[TestClient, MemoryProvider]


@pytest.fixture
def desk(engine: Engine, make_settings: Callable[..., Settings], database_url: str) -> Iterator[Client]:
    build(engine, seed(engine))
    editors.add_editor(engine, "ann", PASSWORD, email="ann@example.com", cost=FAST)
    with running(make_settings, database_url, gate=fast_gate, postal_address="1 Test Street",
                 site_url="https://site.example.com/compare/") as client:
        yield client


def token(client: TestClient, url: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', client.get(url).text)
    assert match
    return match[1]


def sign_in(client: TestClient, name: str = "ann", password: str = PASSWORD) -> Any:
    return client.post("/editor/login", data={"name": name, "password": password,
                                              "csrf": token(client, "/editor/login")}, follow_redirects=False)


def post(client: TestClient, path: str, **fields: str) -> Any:
    return client.post(path, data={"csrf": token(client, "/editor/issues/1"), **fields}, follow_redirects=False)


def status_of(engine: Engine) -> str:
    with session_scope(engine) as session:
        return issues.get_issue(session, 1).status


def test_the_desk_is_closed_until_an_editor_signs_in(desk: Client) -> None:
    client, _ = desk
    assert client.get("/editor", follow_redirects=False).headers["location"] == "/editor/login"
    assert client.get("/editor/issues/1/preview").status_code == 401
    assert client.post("/editor/issues/1/status", data={"action": "approve"},
                       follow_redirects=False).headers["location"] == "/editor/login"
    wrong = sign_in(client, password="not the password")
    assert wrong.status_code == 401 and "do not match" in wrong.text
    assert client.post("/editor/login", data={"name": "ann", "password": PASSWORD}).status_code == 400  # no CSRF
    right = sign_in(client)
    assert right.status_code == 303 and "HttpOnly" in right.headers["set-cookie"]
    assert "samesite=strict" in right.headers["set-cookie"].lower()
    listing = client.get("/editor")
    assert "Iconsmith vs Huewise, and 1 more verdict" in listing.text and ">draft<" in listing.text
    assert "<svg" in listing.text and "Active subscribers" in listing.text


def test_a_new_password_ends_old_sessions(desk: Client, engine: Engine) -> None:
    client, _ = desk
    sign_in(client)
    assert client.get("/editor", follow_redirects=False).status_code == 200
    editors.add_editor(engine, "ann", "a brand new passphrase", cost=FAST)
    assert client.get("/editor", follow_redirects=False).status_code == 303


def test_the_editor_from_settings_signs_in_with_the_configured_hash(
        engine: Engine, make_settings: Callable[..., Settings], database_url: str) -> None:
    hashed = editors.hash_password(PASSWORD, cost=FAST)
    with running(make_settings, database_url, gate=fast_gate, editor_password_hash=hashed) as (client, _):
        assert sign_in(client, name="editor").status_code == 303
        assert client.get("/editor").status_code == 200


def test_the_issue_page_shows_previews_text_checks_and_cohorts(desk: Client) -> None:
    client, _ = desk
    sign_in(client)
    page = client.get("/editor/issues/1")
    assert 'width="600"' in page.text and 'width="375"' in page.text and "frame-src 'self'" in page.headers[
        "content-security-policy"]
    assert "Size</strong>: " in page.text and "under Gmail" in page.text
    assert "1 reader(s) get nothing this week: Audio (1)" in page.text
    assert '<option value="Design"' in page.text and "Draftsmith vs Lede" in page.text
    design = client.get("/editor/issues/1?cohort=Design")
    assert "Draftsmith" not in design.text.split('id="text-version"')[1].split("</pre>")[0]
    assert client.get("/editor/issues/9").status_code == 404
    assert client.get("/editor/issues/9/preview").status_code == 404
    assert client.post("/editor/issues/9/status", data={"action": "approve"}).status_code == 404
    preview = client.get("/editor/issues/1/preview?cohort=all")
    assert preview.headers["x-frame-options"] == "SAMEORIGIN" and "Iconsmith" in preview.text
    assert "%%{" not in preview.text


def test_a_note_and_a_subject_re_render_the_preview_at_once(desk: Client, engine: Engine) -> None:
    client, _ = desk
    sign_in(client)
    note = "**Big week.** Read [the method](https://site.example.com/method).\n\n<script>alert(1)</script>"
    saved = post(client, "/editor/issues/1/edit", note=note, subject="Two verdicts you need", preheader="")
    assert saved.status_code == 303
    preview = client.get("/editor/issues/1/preview").text
    assert "<strong>Big week.</strong>" in preview and "<script>alert" not in preview
    assert "&lt;script&gt;" in preview
    page = client.get(saved.headers["location"])
    assert "Saved; the previews below are re-rendered." in page.text
    text = page.text.split('id="text-version"')[1]
    routed = re.search(r"Read the method \(https://app\.example\.com/r/1/(\d+)\)\.", text)  # routed like the rest
    assert routed, text
    with session_scope(engine) as session:
        method = find_link(session, 1, int(routed[1]))
    assert method is not None and method.target == "https://site.example.com/method"
    with session_scope(engine) as session:
        assert set(s.subject for s in issues.rendered_emails(session, issues.get_issue(session, 1)).values()) == {
            "Two verdicts you need"}


def test_comparisons_can_be_dropped_restored_and_reordered(desk: Client) -> None:
    client, _ = desk
    sign_in(client)
    post(client, "/editor/issues/1/lineup", slug="iconsmith-vs-huewise", move="drop")
    assert "Iconsmith" not in client.get("/editor/issues/1/preview").text
    refused = post(client, "/editor/issues/1/lineup", slug="draftsmith-vs-lede", move="drop")
    assert refused.status_code == 400 and "restore at least one" in refused.text
    post(client, "/editor/issues/1/lineup", slug="iconsmith-vs-huewise", move="restore")
    post(client, "/editor/issues/1/lineup", slug="draftsmith-vs-lede", move="up")
    preview = client.get("/editor/issues/1/preview").text
    assert preview.index("Draftsmith") < preview.index("Iconsmith")
    post(client, "/editor/issues/1/lineup", slug="iconsmith-vs-huewise", move="pin")
    preview = client.get("/editor/issues/1/preview").text
    assert preview.index("Iconsmith") < preview.index("Draftsmith")


def test_a_test_send_goes_to_the_given_addresses_only(desk: Client) -> None:
    client, outbox = desk
    sign_in(client)
    sent = post(client, "/editor/issues/1/test", addresses="ed@example.com, sam@example.com", cohort="Design")
    assert sent.status_code == 303
    assert [(m.to, m.subject) for m in outbox.outbox] == [
        ("ed@example.com", "[Test] This week's verdict: Iconsmith vs Huewise"),
        ("sam@example.com", "[Test] This week's verdict: Iconsmith vs Huewise")]
    bad = post(client, "/editor/issues/1/test", addresses="not an address")
    assert bad.status_code == 400 and "not a valid email address" in bad.text


def test_approve_schedule_pause_resume_and_cancel(desk: Client, engine: Engine) -> None:
    client, _ = desk
    sign_in(client)
    post(client, "/editor/issues/1/status", action="approve")
    assert status_of(engine) == "approved"
    post(client, "/editor/issues/1/edit", note="A late change", subject="", preheader="")
    assert status_of(engine) == "draft"  # what was approved is not what would go out any more
    past = post(client, "/editor/issues/1/status", action="schedule", send_at="2020-01-01T07:00")
    assert past.status_code == 400 and "has passed" in past.text
    post(client, "/editor/issues/1/status", action="schedule", send_at="2099-01-05T07:00")
    with session_scope(engine) as session:
        issue = issues.get_issue(session, 1)
        assert (issue.status, issue.approved_by, issue.send_at.year) == ("approved", "ann", 2099)
    post(client, "/editor/issues/1/status", action="pause")
    assert status_of(engine) == "paused"
    post(client, "/editor/issues/1/status", action="resume")
    assert status_of(engine) == "sending"
    refused = post(client, "/editor/issues/1/status", action="cancel", confirmed="yes")
    assert refused.status_code == 400 and "cannot become cancelled" in refused.text
    post(client, "/editor/issues/1/status", action="pause")
    unconfirmed = post(client, "/editor/issues/1/status", action="cancel")
    assert unconfirmed.status_code == 400 and "confirm on the page it opens" in unconfirmed.text
    assert status_of(engine) == "paused"
    asked = post(client, "/editor/issues/1/cancel")
    assert asked.status_code == 200 and "Cancel issue 1?" in asked.text and "10 queued deliveries" in asked.text
    assert status_of(engine) == "paused"  # the confirmation page changes nothing
    post(client, "/editor/issues/1/status", action="cancel", confirmed="yes")
    with session_scope(engine) as session:
        assert status_of(engine) == "cancelled"
        assert issues.delivery_counts(session, issues.get_issue(session, 1).id) == {"withdrawn": 10}


def test_figures_count_outcomes_and_readers_who_left_after_the_issue(desk: Client, engine: Engine) -> None:
    from newsletter.dispatch import Envelope, Sending, send_issue
    from subscribers import service
    from subscribers.models import Subscriber
    from subscribers.store import SubscriberRecipients
    from tests.newsletter.test_issues import LINKS

    client, _ = desk
    envelope = Envelope("V <v@news.example.com>", "Verdicts", "news.example.com", "https://app.example.com")
    send_issue(engine, 1, provider=MemoryProvider(), sending=Sending(SubscriberRecipients(engine, LINKS), envelope))
    from sqlmodel import Session, select

    with Session(engine) as session:
        reader = session.exec(select(Subscriber).where(Subscriber.email == "all0@example.com")).one()
    assert reader.id is not None
    service.unsubscribe(engine, reader.id, channel="page")
    sign_in(client)
    figures = client.get("/editor/issues/1").text.split('id="figures"')[1]
    assert re.search(r"Submitted</th><td class=\"n\">10<", figures)
    assert re.search(r"Unsubscribed since</th><td class=\"n\">1<", figures)


def test_issue_numbers_past_any_stored_one_are_not_found(desk: Client) -> None:
    client, _ = desk
    sign_in(client)
    for number in ("99999999999999999999999", str(2**63), str(2**31), "-1"):
        assert client.get(f"/editor/issues/{number}").status_code == 404
        assert client.get(f"/editor/issues/{number}/preview").status_code == 404
        for action in ("edit", "lineup", "test", "status"):
            answer = post(client, f"/editor/issues/{number}/{action}", action="approve")
            assert answer.status_code == 404, (number, action)


def test_a_csrf_token_with_non_ascii_characters_is_an_expired_form(desk: Client, engine: Engine) -> None:
    client, _ = desk
    token(client, "/editor/login")  # the CSRF cookie
    for bad in ("é", "ü" * 64):
        refused = client.post("/editor/login", data={"name": "ann", "password": PASSWORD, "csrf": bad})
        assert refused.status_code == 400 and "The form expired" in refused.text
    sign_in(client)
    for bad in ("é", "ü" * 64):
        for action, fields in (("edit", {"note": "x"}), ("lineup", {"slug": "x", "move": "up"}),
                               ("test", {"addresses": "ed@example.com"}), ("status", {"action": "approve"})):
            answer = client.post(f"/editor/issues/1/{action}", data={"csrf": bad, **fields}, follow_redirects=False)
            assert answer.status_code == 400 and "The form expired" in answer.text, action
        assert client.post("/editor/logout", data={"csrf": bad}, follow_redirects=False).status_code == 303
    assert status_of(engine) == "draft"
    assert client.get("/editor", follow_redirects=False).status_code == 200  # a forged sign-out did nothing


def test_control_characters_in_desk_fields_get_a_clear_refusal(desk: Client, engine: Engine) -> None:
    client, _ = desk
    token(client, "/editor/login")
    nul = client.post("/editor/login", data={"name": "ann\x00", "password": PASSWORD,
                                             "csrf": token(client, "/editor/login")})
    assert nul.status_code == 401 and "do not match" in nul.text  # PostgreSQL refuses NUL in text: no query
    sign_in(client)
    for field in ("note", "subject", "preheader"):
        fields = {"note": "", "subject": "", "preheader": ""} | {field: "Big\x00week"}
        refused = post(client, "/editor/issues/1/edit", **fields)
        assert refused.status_code == 400 and f"the {field} contains a control character" in refused.text, field
    with session_scope(engine) as session:
        row = issues.get_issue(session, 1)
        assert (row.note, row.subject_override, row.preheader_override) == ("", None, None)  # nothing half-saved


@pytest.mark.parametrize("note", ["Ask %%{foo}%% anything", "Leave at %%{unsubscribe_url}%% if you must",
                                  "**%%{web_url}%%** and [here](https://site.example.com/%%{preferences_url}%%)"])
def test_placeholders_in_a_note_stay_text_for_every_reader(desk: Client, note: str) -> None:
    client, outbox = desk
    sign_in(client)
    saved = post(client, "/editor/issues/1/edit", note=note, subject="", preheader="")
    assert saved.status_code == 303, saved.text
    assert client.get(saved.headers["location"]).status_code == 200
    name = re.findall(r"%%\{(\w+)\}%%", note)[0]
    preview = client.get("/editor/issues/1/preview").text
    assert f"{{{name}}}%%" in preview  # shown as written, not filled with the reader's own link
    post(client, "/editor/issues/1/test", addresses="ed@example.com")
    (message,) = outbox.outbox
    for body in (message.html, message.text):
        assert f"{{{name}}}%%" in body and "%%{" not in body


@pytest.mark.parametrize("send_at", ["9999-12-31T23:30", "0001-01-01T00:00"])
def test_a_send_time_at_the_ends_of_the_calendar_is_refused(engine: Engine, make_settings: Callable[..., Settings],
                                                            database_url: str, send_at: str) -> None:
    build(engine, seed(engine))
    editors.add_editor(engine, "ann", PASSWORD)
    with running(make_settings, database_url, postal_address="1 Test Street", timezone="Asia/Tokyo"
                 if send_at.startswith("0001") else "America/New_York") as (client, _):
        sign_in(client)
        refused = post(client, "/editor/issues/1/status", action="schedule", send_at=send_at)
        assert refused.status_code == 400 and "pick a time" in refused.text
    assert status_of(engine) == "draft"


def test_cancelling_asks_first_on_a_page_of_its_own_behind_the_csrf_check(desk: Client, engine: Engine) -> None:
    client, _ = desk
    sign_in(client)
    page = client.get("/editor/issues/1").text
    assert 'action="/editor/issues/1/cancel"' in page and 'value="cancel"' not in page
    forged = client.post("/editor/issues/1/cancel", data={"csrf": "0" * 64}, follow_redirects=False)
    assert forged.status_code == 303 and "Cancel issue 1?" not in forged.text
    asked = post(client, "/editor/issues/1/cancel")
    assert "Yes, cancel issue 1" in asked.text and 'name="confirmed" value="yes"' in asked.text
    assert 'href="/editor/issues/1">No, keep it' in asked.text
    assert status_of(engine) == "draft"
    assert client.post("/editor/issues/99/cancel", data={"csrf": token(client, "/editor/issues/1")}).status_code == 404


def test_a_sent_issue_shows_its_outcome_instead_of_the_pre_send_checks(desk: Client, engine: Engine) -> None:
    from newsletter.dispatch import Envelope, Sending, send_issue
    from subscribers.store import SubscriberRecipients
    from tests.newsletter.test_issues import LINKS

    client, _ = desk
    envelope = Envelope("V <v@news.example.com>", "Verdicts", "news.example.com", "https://app.example.com")
    send_issue(engine, 1, provider=MemoryProvider(), sending=Sending(SubscriberRecipients(engine, LINKS), envelope))
    sign_in(client)
    page = client.get("/editor/issues/1").text
    assert 'id="outcome"' in page and "10 submitted to the provider" in page
    assert "Checks before sending" not in page and ">Approve<" not in page and "Cancel issue" not in page
    assert 'class="status status-sent"' in page and 'href="/archive/1"' in page
    listing = client.get("/editor").text
    assert '<span class="status status-sent">sent</span>' in listing and 'aria-label="Issue 1"' in listing


def test_rows_buttons_are_named_for_their_comparison_and_the_dark_preview_applies_dark_rules(desk: Client) -> None:
    client, _ = desk
    sign_in(client)
    page = client.get("/editor/issues/1").text
    assert 'aria-label="Drop Iconsmith vs Huewise"' in page and 'aria-label="Move Iconsmith vs Huewise up"' in page
    assert 'id="preview-dark"' in page and "scheme=dark" in page
    light = client.get("/editor/issues/1/preview").text
    dark = client.get("/editor/issues/1/preview?scheme=dark").text
    assert "prefers-color-scheme: dark" in light and "prefers-color-scheme" not in dark
    assert '<meta name="color-scheme" content="dark">' in dark
    assert "Images</strong>: no images" in page
