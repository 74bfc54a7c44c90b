"""An erased address stays suppressed on every path back in; resubscribing goes through double opt-in again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from typer.testing import CliRunner

from newsletter.cli import app
from newsletter.config import Settings
from newsletter.db import session_scope
from subscribers import privacy, store
from subscribers.models import Subscriber
from subscribers.tokens import Signer
from tests.newsletter.test_cli import env  # noqa: F401 - the configured CLI working folder
from tests.newsletter.web.helpers import confirm, csrf, link_in, running

runner = CliRunner()


def by_address(engine: Engine, address: str) -> Subscriber | None:
    with Session(engine) as session:
        return session.exec(select(Subscriber).where(Subscriber.email == address)).first()


def erased_row(engine: Engine, address: str, secret: str) -> Subscriber:
    found = by_address(engine, privacy.erased_address(address, secret))
    assert found is not None and found.erased
    return found


def test_cli_add_and_import_skip_an_erased_address(env: Path, engine: Engine) -> None:  # noqa: F811
    assert runner.invoke(app, ["subscribers", "add", "eve@example.org"]).exit_code == 0
    assert runner.invoke(app, ["subscribers", "forget", "eve@example.org"]).exit_code == 0
    added = runner.invoke(app, ["subscribers", "add", "Eve@Example.org", "new@example.org"])
    assert added.exit_code == 0, added.output
    assert "erased  eve@example.org" in added.output and "added  new@example.org" in added.output
    (env / "back.csv").write_text("email,status,consented_at\neve@example.org,active,2026-01-01\n")
    imported = runner.invoke(app, ["subscribers", "import", "back.csv", "--send-confirmation"])
    assert imported.exit_code == 0 and "1 skipped (erased earlier)" in imported.output
    assert by_address(engine, "eve@example.org") is None
    assert not list((env / "out").glob("*.eml"))  # nobody was asked to confirm either


def test_store_add_active_reports_erased_addresses(engine: Engine, make_settings: Callable[..., Settings]) -> None:
    secret = make_settings().require_secret()
    with session_scope(engine) as session:
        store.add_active(session, ["eve@example.org"])
    privacy.forget(engine, "eve@example.org", secret=secret)
    with session_scope(engine) as session:
        assert store.add_active(session, ["eve@example.org"], secret=secret) == [("eve@example.org", "erased")]
    assert by_address(engine, "eve@example.org") is None


def test_web_sign_up_of_an_erased_address_looks_the_same_and_sends_nothing(
        engine: Engine, database_url: str, make_settings: Callable[..., Settings]) -> None:
    secret = make_settings().require_secret()
    with running(make_settings, database_url, confirm_resend_minutes=0) as (client, outbox):
        token = csrf(client, "/")
        fresh = client.post("/subscribe", data={"csrf": token, "email": "new@example.org"})
        client.post("/subscribe", data={"csrf": token, "email": "eve@example.org"})
        confirm(client, link_in(outbox, "eve@example.org"))
        privacy.forget(engine, "eve@example.org", secret=secret)
        outbox.outbox.clear()
        again = client.post("/subscribe", data={"csrf": token, "email": "eve@example.org"})
        assert (again.status_code, again.text) == (fresh.status_code, fresh.text)
        assert outbox.outbox == [] and by_address(engine, "eve@example.org") is None
        assert erased_row(engine, "eve@example.org", secret).status == "unsubscribed"


def test_an_old_resubscribe_link_does_not_bring_back_an_erased_reader(
        engine: Engine, database_url: str, make_settings: Callable[..., Settings]) -> None:
    secret = make_settings().require_secret()
    with session_scope(engine) as session:
        store.add_active(session, ["eve@example.org"])
    subscriber = by_address(engine, "eve@example.org")
    assert subscriber is not None and subscriber.id is not None
    url = f"/resubscribe/{Signer(secret).mint('unsubscribe', subscriber.id)}"
    with running(make_settings, database_url) as (client, outbox):
        client.post(url.replace("/resubscribe/", "/unsubscribe/"), data={"List-Unsubscribe": "One-Click"})
        privacy.forget(engine, "eve@example.org", secret=secret)
        for answer in (client.post(url), client.post(url, data={"csrf": csrf(client, "/")})):
            assert answer.status_code == 400 and "Welcome back" not in answer.text
        assert outbox.outbox == []
    assert erased_row(engine, "eve@example.org", secret).status == "unsubscribed"


def test_resubscribing_needs_csrf_and_a_fresh_confirmation(engine: Engine, database_url: str,
                                                           make_settings: Callable[..., Settings]) -> None:
    secret = make_settings().require_secret()
    with session_scope(engine) as session:
        store.add_active(session, ["ann@example.org"], categories=["Design"])
    subscriber = by_address(engine, "ann@example.org")
    assert subscriber is not None and subscriber.id is not None
    token = Signer(secret).mint("unsubscribe", subscriber.id)
    with running(make_settings, database_url) as (client, outbox):
        left = client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
        assert f'action="/resubscribe/{token}"' in left.text
        forged = client.post(f"/resubscribe/{token}")  # no CSRF token: a forged form
        assert forged.status_code == 400 and "The form expired" in forged.text and outbox.outbox == []
        assert by_address(engine, "ann@example.org").status == "unsubscribed"  # type: ignore[union-attr]
        page = client.get(f"/resubscribe/{token}")  # shows the consent wording and a button; changes nothing
        assert page.status_code == 200 and "one email a week" in page.text
        assert by_address(engine, "ann@example.org").status == "unsubscribed"  # type: ignore[union-attr]
        asked = client.post(f"/resubscribe/{token}", data={"csrf": csrf(client, f"/resubscribe/{token}")})
        assert asked.status_code == 200 and "Check your inbox" in asked.text
        back = by_address(engine, "ann@example.org")
        assert back is not None and back.status == "pending" and back.consent_ip == "testclient"
        assert "You're in" in confirm(client, link_in(outbox, "ann@example.org")).text
    active = by_address(engine, "ann@example.org")
    assert active is not None and (active.status, active.categories, active.unsubscribed_at) == ("active", "Design", None)


def test_an_address_change_to_an_erased_address_sends_nothing(engine: Engine, database_url: str,
                                                              make_settings: Callable[..., Settings]) -> None:
    secret = make_settings().require_secret()
    with session_scope(engine) as session:
        store.add_active(session, ["pat@example.org", "eve@example.org"])
    privacy.forget(engine, "eve@example.org", secret=secret)
    subscriber = by_address(engine, "pat@example.org")
    assert subscriber is not None and subscriber.id is not None
    url = f"/preferences/{Signer(secret).mint('manage', subscriber.id)}"
    with running(make_settings, database_url) as (client, outbox):
        to_erased = client.post(url, data={"csrf": csrf(client, url), "email": "eve@example.org"})
        to_other = client.post(url, data={"csrf": csrf(client, url), "email": "zed@example.org"})
        assert to_erased.status_code == to_other.status_code == 200
        assert "Confirm eve@example.org" in to_erased.text and "Confirm zed@example.org" in to_other.text
        assert [m.to for m in outbox.outbox] == ["zed@example.org"]


def test_an_address_change_asked_before_the_target_was_erased_no_longer_confirms(
        engine: Engine, database_url: str, make_settings: Callable[..., Settings]) -> None:
    secret = make_settings().require_secret()
    with session_scope(engine) as session:
        store.add_active(session, ["pat@example.org", "eve@example.org"])
    subscriber = by_address(engine, "pat@example.org")
    assert subscriber is not None and subscriber.id is not None
    url = f"/preferences/{Signer(secret).mint('manage', subscriber.id)}"
    with running(make_settings, database_url) as (client, outbox):
        client.post(url, data={"csrf": csrf(client, url), "email": "eve@example.org"})
        link = link_in(outbox, "eve@example.org")
        privacy.forget(engine, "eve@example.org", secret=secret)
        assert client.get(link).status_code == client.post(link, data={"csrf": csrf(client, "/")}).status_code == 400
    assert by_address(engine, "eve@example.org") is None
    assert by_address(engine, "pat@example.org") is not None


def test_one_click_from_an_old_issue_after_erasure_says_unsubscribed_and_reveals_nothing(
        engine: Engine, database_url: str, make_settings: Callable[..., Settings]) -> None:
    secret = make_settings().require_secret()
    with session_scope(engine) as session:
        store.add_active(session, ["eve@example.org", "ann@example.org"])
    eve, ann = by_address(engine, "eve@example.org"), by_address(engine, "ann@example.org")
    assert eve is not None and eve.id is not None and ann is not None and ann.id is not None
    url = f"/unsubscribe/{Signer(secret).mint('unsubscribe', eve.id)}"
    privacy.forget(engine, "eve@example.org", secret=secret)
    before = erased_row(engine, "eve@example.org", secret).model_dump()
    with running(make_settings, database_url) as (client, outbox):
        opened = client.get(url)  # the mail client's page view, then its RFC 8058 POST, then the page's button
        for answer in (opened, client.post(url, data={"List-Unsubscribe": "One-Click"}),
                       client.post(url, files={"List-Unsubscribe": (None, "One-Click")}),
                       client.post(url, data={"confirm": "yes"})):
            assert answer.status_code == 200 and "You're unsubscribed" in answer.text, answer.text
            assert "eve" not in answer.text and "e••" not in answer.text and "/resubscribe/" not in answer.text
        tampered = client.post(url[:-3] + "xyz", data={"List-Unsubscribe": "One-Click"})
        assert tampered.status_code == 400 and "This link doesn't work" in tampered.text
        assert outbox.outbox == []
    assert erased_row(engine, "eve@example.org", secret).model_dump() == before  # nothing changed
    assert by_address(engine, "ann@example.org").status == "active"  # type: ignore[union-attr]
