"""The preferences page cannot be used to mail someone else's inbox over and over."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from newsletter.config import Settings
from newsletter.db import session_scope
from newsletter.errors import SubscriberError
from subscribers import signup, store
from subscribers.models import Subscriber
from subscribers.tokens import Signer
from tests.newsletter.web.helpers import csrf, running


def preferences_url(engine: Engine, address: str, secret: str) -> str:
    with Session(engine) as session:
        row = session.exec(select(Subscriber).where(Subscriber.email == address)).one()
    assert row.id is not None
    return f"/preferences/{Signer(secret).mint('manage', row.id)}"


def test_ten_posts_of_one_new_address_mail_it_once(engine: Engine, database_url: str,
                                                   make_settings: Callable[..., Settings]) -> None:
    secret = make_settings().require_secret()
    with session_scope(engine) as session:
        store.add_active(session, ["mallory@example.org", "trudy@example.org"])
    url = preferences_url(engine, "mallory@example.org", secret)
    with running(make_settings, database_url, confirm_resend_minutes=10) as (client, outbox):
        token = csrf(client, url)
        answers = [client.post(url, data={"csrf": token, "email": "victim@example.org"}) for _ in range(10)]
        assert answers[0].status_code == 200 and "Confirm victim@example.org" in answers[0].text
        assert all(a.status_code == 429 and "Not sent" in a.text for a in answers[1:])
        other = preferences_url(engine, "trudy@example.org", secret)  # a second account changes nothing
        assert client.post(other, data={"csrf": csrf(client, other), "email": "victim@example.org"}).status_code == 429
    # Another web worker (another app on the same database) counts the same mails.
    with running(make_settings, database_url, confirm_resend_minutes=10) as (client, second):
        assert client.post(url, data={"csrf": csrf(client, url), "email": "victim@example.org"}).status_code == 429
        assert second.outbox == []
    assert [m.to for m in outbox.outbox] == ["victim@example.org"]


def test_a_few_address_changes_per_subscriber_a_day(engine: Engine, database_url: str,
                                                    make_settings: Callable[..., Settings]) -> None:
    secret = make_settings().require_secret()
    with session_scope(engine) as session:
        store.add_active(session, ["mallory@example.org"])
    url = preferences_url(engine, "mallory@example.org", secret)
    with running(make_settings, database_url, confirm_resend_minutes=0) as (client, outbox):
        token = csrf(client, url)
        codes = [client.post(url, data={"csrf": token, "email": f"target{i}@example.org"}).status_code
                 for i in range(5)]
    assert codes == [200] * signup.ADDRESS_CHANGES_PER_DAY + [429] * (5 - signup.ADDRESS_CHANGES_PER_DAY)
    assert len(outbox.outbox) == signup.ADDRESS_CHANGES_PER_DAY


def test_the_limits_lift_with_time(engine: Engine, make_settings: Callable[..., Settings]) -> None:
    secret = make_settings().require_secret()
    with session_scope(engine) as session:
        store.add_active(session, ["mallory@example.org"])
        subscriber = session.exec(select(Subscriber)).one().id
    assert subscriber is not None
    start = datetime(2026, 12, 1, 9, tzinfo=UTC)

    def ask(address: str, minutes: float) -> signup.AddressChange:
        return signup.request_address_change(engine, subscriber, address, secret=secret,
                                             resend_after=timedelta(minutes=10),
                                             now=start + timedelta(minutes=minutes))

    assert ask("a@example.org", 0).send
    too_soon = ask("a@example.org", 9)
    assert not too_soon.send and "a confirmation went to a@example.org a moment ago" in (too_soon.refused or "")
    assert ask("a@example.org", 11).send
    assert ask("b@example.org", 12).send
    too_many = ask("c@example.org", 13)
    assert not too_many.send and "at most 3 address changes a day" in (too_many.refused or "")
    assert ask("c@example.org", 24 * 60 + 1).send
    with pytest.raises(SubscriberError, match="already your address"):
        ask("mallory@example.org", 24 * 60 + 2)
