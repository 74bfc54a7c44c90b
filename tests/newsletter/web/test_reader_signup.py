"""Sign-up with double opt-in, consent records, abuse limits and preferences, through the real app."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from newsletter.catalog.importer import import_files
from newsletter.config import Settings
from subscribers.models import Subscriber
from subscribers.tokens import Signer
from tests.conftest import FIXTURE_PAGES
from tests.newsletter.web.helpers import SECRET, confirm, csrf, link_in, running


def row(engine: Engine, address: str) -> Subscriber | None:
    with Session(engine) as session:
        return session.exec(select(Subscriber).where(Subscriber.email == address)).first()


def test_double_opt_in_with_consent_recorded(engine: Engine, database_url: str,
                                             make_settings: Callable[..., Settings]) -> None:
    import_files(engine, sorted(FIXTURE_PAGES.glob("*.txt")), published=__import__("datetime").date(2026, 11, 18))
    with running(make_settings, database_url) as (client, outbox):
        page = client.get("/")
        assert 'name="category" value="Design"' in page.text and 'name="category" value="Writing"' in page.text
        answer = client.post("/subscribe", data={"csrf": csrf(client, "/"), "email": "Ann@Example.org",
                                                 "category": ["Design", "Bogus"], "free_only": "yes"},
                             headers={"user-agent": "TestBrowser/1.0"})
        assert answer.status_code == 200 and "Check your inbox" in answer.text
        pending = row(engine, "ann@example.org")
        assert pending is not None and pending.status == "pending"
        assert pending.categories == "Design" and pending.free_only  # unknown categories are dropped
        assert pending.consent_at and pending.consent_ip == "testclient" and pending.consent_user_agent == "TestBrowser/1.0"
        assert pending.consent_text and "one email a week" in pending.consent_text
        (message,) = outbox.outbox
        assert message.subject.startswith("Confirm your") and "<mj-" not in message.html
        confirmed = confirm(client, link_in(outbox, "ann@example.org"), headers={"user-agent": "TestBrowser/2.0"})
        assert confirmed.status_code == 200 and "You're in" in confirmed.text and "Design (free tools only)" in confirmed.text
    active = row(engine, "ann@example.org")
    assert active is not None and active.status == "active" and active.confirmed_at and active.confirmed_ip == "testclient"
    assert active.confirmed_user_agent == "TestBrowser/2.0"


def test_a_scanner_fetching_a_fresh_link_confirms_nothing(engine: Engine, database_url: str,
                                                          make_settings: Callable[..., Settings]) -> None:
    with running(make_settings, database_url) as (client, outbox):
        client.post("/subscribe", data={"csrf": csrf(client, "/"), "email": "ann.smith@example.org"})
        link = link_in(outbox, "ann.smith@example.org")
        for _ in range(3):  # gateways fetch every link of a message, some more than once, some with HEAD
            page = client.get(link, headers={"user-agent": "Scanner/1.0"})
            assert page.status_code == 200 and client.head(link).status_code == 200
        assert "a••••••••@example.org" in page.text and "ann.smith@" not in page.text
        assert f'<form method="post" action="{link}">' in page.text and 'name="csrf"' in page.text
        assert "Confirm my subscription" in page.text and "You're in" not in page.text
        waiting = row(engine, "ann.smith@example.org")
        assert waiting is not None and waiting.status == "pending"
        assert (waiting.confirmed_at, waiting.confirmed_ip, waiting.confirmed_user_agent) == (None, None, None)
        for forged in ({}, {"csrf": "0" * 64}, {"csrf": "é"}):  # a bad CSRF value shows the button again
            again = client.post(link, data=forged)
            assert again.status_code == 400 and "The form expired" in again.text and "Confirm my subscription" in again.text
        assert row(engine, "ann.smith@example.org").status == "pending"  # type: ignore[union-attr]
        confirmed = confirm(client, link, headers={"user-agent": "Reader/1.0"})
        assert confirmed.status_code == 200 and "You're in" in confirmed.text
    active = row(engine, "ann.smith@example.org")
    assert active is not None and active.status == "active" and active.confirmed_user_agent == "Reader/1.0"


def test_same_answer_for_everyone_and_resends_are_throttled(engine: Engine, database_url: str,
                                                            make_settings: Callable[..., Settings]) -> None:
    with running(make_settings, database_url, confirm_resend_minutes=10) as (client, outbox):
        token = csrf(client, "/")
        answers = [client.post("/subscribe", data={"csrf": token, "email": address}).text
                   for address in ("new@example.org", "new@example.org", "not an address")]
        assert answers[0] == answers[1] == answers[2]
        assert [m.to for m in outbox.outbox] == ["new@example.org"]  # the second came too soon
        confirm(client, link_in(outbox, "new@example.org"))
        assert client.post("/subscribe", data={"csrf": token, "email": "new@example.org"}).text == answers[0]
        assert [m.subject for m in outbox.outbox] == [  # the confirmation, the welcome; active now: nothing more
            "Confirm your Weekly AI Tool Verdicts subscription", "Welcome to Weekly AI Tool Verdicts"]
    with running(make_settings, database_url, confirm_resend_minutes=0) as (client, outbox):
        token = csrf(client, "/")
        for _ in range(2):
            client.post("/subscribe", data={"csrf": token, "email": "again@example.org"})
        assert len(outbox.outbox) == 2


def test_expired_tampered_and_foreign_links_get_a_friendly_page(engine: Engine, database_url: str,
                                                                make_settings: Callable[..., Settings]) -> None:
    with running(make_settings, database_url) as (client, outbox):
        client.post("/subscribe", data={"csrf": csrf(client, "/"), "email": "late@example.org"})
        link = link_in(outbox, "late@example.org")
        subscriber = row(engine, "late@example.org")
        assert subscriber is not None and subscriber.id is not None

        class EightDaysAgo(TimestampSigner):
            def get_timestamp(self) -> int:
                return int(time.time()) - 8 * 86400

        old = URLSafeTimedSerializer(SECRET, salt="newsletter.confirm", signer=EightDaysAgo).dumps(
            [subscriber.id, "late@example.org"])
        expired = client.get(f"/confirm/{old}")
        assert expired.status_code == 400 and "This link has expired" in expired.text and 'action="/subscribe"' in expired.text
        token = csrf(client, "/")
        posted = client.post(f"/confirm/{old}", data={"csrf": token})
        assert posted.status_code == 400 and "This link has expired" in posted.text and 'action="/subscribe"' in posted.text
        for bad in (link[:-4] + "AAAA", "/confirm/" + Signer(SECRET).mint("manage", subscriber.id)):
            for answer in (client.get(bad), client.post(bad, data={"csrf": token}), client.post(bad)):
                assert answer.status_code == 400 and "This link doesn't work" in answer.text
                assert 'action="/subscribe"' in answer.text
        assert row(engine, "late@example.org").status == "pending"  # type: ignore[union-attr]


def test_csrf_honeypot_and_rate_limit(engine: Engine, database_url: str, make_settings: Callable[..., Settings]) -> None:
    with running(make_settings, database_url, signup_rate_limit=3) as (client, outbox):
        assert client.post("/subscribe", data={"email": "x@example.org"}).status_code == 400  # no CSRF token
        token = csrf(client, "/")
        assert "Check your inbox" in client.post("/subscribe", data={"csrf": token, "email": "bot@example.org",
                                                                     "website": "http://spam"}).text
        assert row(engine, "bot@example.org") is None and outbox.outbox == []
        client.post("/subscribe", data={"csrf": token, "email": "a@example.org"})
        client.post("/subscribe", data={"csrf": token, "email": "b@example.org"})
        assert client.post("/subscribe", data={"csrf": token, "email": "c@example.org"}).status_code == 429
        assert row(engine, "c@example.org") is None
        long = client.post("/subscribe", data={"csrf": token, "email": "x" * 5000 + "@example.org"})
        assert long.status_code in (200, 429) and "<script" not in long.text


def test_preferences_pause_and_address_change(engine: Engine, database_url: str,
                                              make_settings: Callable[..., Settings]) -> None:
    import_files(engine, sorted(FIXTURE_PAGES.glob("*.txt")), published=__import__("datetime").date(2026, 11, 18))
    with running(make_settings, database_url) as (client, outbox):
        client.post("/subscribe", data={"csrf": csrf(client, "/"), "email": "pat@example.org"})
        confirm(client, link_in(outbox, "pat@example.org"))
        subscriber = row(engine, "pat@example.org")
        assert subscriber is not None and subscriber.id is not None
        url = f"/preferences/{Signer(SECRET).mint('manage', subscriber.id)}"
        assert client.post(url, data={"category": "Writing"}).status_code == 400  # no CSRF: not saved
        assert row(engine, "pat@example.org").categories == ""  # type: ignore[union-attr]
        before = client.get(url).text
        assert "Active: you get every issue." in before and "either of its two tools" in before
        assert "No category is ticked now, so you get every category." in before
        saved = client.post(url, data={"csrf": csrf(client, url), "category": "Writing", "pause": "2",
                                       "email": "pat@example.org"})
        assert saved.status_code == 200
        assert "Saved: you now get Writing; the next 2 issues will be skipped." in saved.text, saved.text
        assert "Paused: the next 2 issues will be skipped" in saved.text and "No category is ticked" not in saved.text
        same = client.post(url, data={"csrf": csrf(client, url), "category": "Writing", "pause": "2",
                                      "email": "pat@example.org"})
        assert "Saved; nothing changed." in same.text
        changed = row(engine, "pat@example.org")
        assert changed is not None and (changed.categories, changed.pause_remaining) == ("Writing", 2)
        old_link = link_in(outbox, "pat@example.org")
        moved = client.post(url, data={"csrf": csrf(client, url), "email": "pat@new.example.org", "pause": "0"})
        assert "Confirm pat@new.example.org" in moved.text
        assert row(engine, "pat@example.org") is not None  # the old address keeps getting mail meanwhile
        client.post(old_link, data={"csrf": csrf(client, "/")})  # the old sign-up link does not confirm the new one
        assert row(engine, "pat@new.example.org") is None
        new_link = link_in(outbox, "pat@new.example.org")
        page = client.get(new_link)
        assert "Confirm my new address" in page.text and "p••@new.example.org" in page.text
        assert row(engine, "pat@new.example.org") is None  # opening the link is not confirming it
        assert "You're in" in confirm(client, new_link).text
        assert row(engine, "pat@new.example.org") is not None and row(engine, "pat@example.org") is None
        assert client.get("/preferences/nonsense").status_code == 400


def test_an_old_confirmation_link_does_not_bring_back_a_reader_who_left(engine: Engine, database_url: str,
                                                                        make_settings: Callable[..., Settings]) -> None:
    with running(make_settings, database_url) as (client, outbox):
        client.post("/subscribe", data={"csrf": csrf(client, "/"), "email": "gone@example.org"})
        link = link_in(outbox, "gone@example.org")
        assert "You're in" in confirm(client, link).text
        assert "You're in" in client.get(link).text  # a second click while active changes nothing
        assert "You're in" in client.post(link, data={"csrf": csrf(client, "/")}).text
        subscriber = row(engine, "gone@example.org")
        assert subscriber is not None and subscriber.id is not None
        unsubscribe = f"/unsubscribe/{Signer(SECRET).mint('unsubscribe', subscriber.id)}"
        client.post(unsubscribe, data={"List-Unsubscribe": "One-Click"})
        for again in (client.get(link), client.get(link), client.post(link, data={"csrf": csrf(client, "/")})):
            assert again.status_code == 400 and "This link doesn't work" in again.text  # a scanner, or a click
        left = row(engine, "gone@example.org")
        assert left is not None and left.status == "unsubscribed" and left.unsubscribe_channel == "one-click"


def test_a_confirmed_reader_gets_a_welcome_with_their_own_one_click_unsubscribe(
        engine: Engine, database_url: str, make_settings: Callable[..., Settings]) -> None:
    with running(make_settings, database_url, send_cron="0 7 * * tue", timezone="Europe/Berlin") as (client, outbox):
        client.post("/subscribe", data={"csrf": csrf(client, "/"), "email": "wes@example.org"})
        link = link_in(outbox, "wes@example.org")
        confirmed = confirm(client, link)
        assert "href=\"/archive\">in the archive" in confirmed.text  # no issue sent yet: the archive instead
        (welcome,) = [m for m in outbox.outbox if m.subject.startswith("Welcome")]
        reader = row(engine, "wes@example.org")
        assert reader is not None and reader.id is not None
        unsubscribe = welcome.header("List-Unsubscribe") or ""
        assert re.match(r"<https://app\.example\.com/unsubscribe/[^>]+>, <mailto:[^>]+>$", unsubscribe), unsubscribe
        assert welcome.header("List-Unsubscribe-Post") == "List-Unsubscribe=One-Click"
        one_click = unsubscribe[1:unsubscribe.index(">")].removeprefix("https://app.example.com")
        assert "every Tuesday at 07:00 (Europe/Berlin)" in " ".join(welcome.text.split())
        assert "/preferences/" in welcome.text
        assert "every Tuesday at 07:00 (Europe/Berlin)" in welcome.html and "<h1" in welcome.html
        assert all(len(line) <= 72 or "://" in line for line in welcome.text.splitlines()), welcome.text
        again = client.post(link, data={"csrf": csrf(client, "/")})  # a second press is no new sign-up: no welcome
        assert again.status_code == 200 and "You're in" in again.text
        assert sum(m.subject.startswith("Welcome") for m in outbox.outbox) == 1
        assert client.post(one_click, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert row(engine, "wes@example.org").status == "unsubscribed"  # type: ignore[union-attr]
